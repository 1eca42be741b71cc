"""``evaluate_detectors``: the whole test of AI-text detectors on one scoring model, as one function.

Steps: resolve the scoring model (a run or a model folder) and its tokenizer; read the human texts
(a JSON-lines file or a corpus's documents) and check them against the training data's index; take
the machine texts as given or generate them from the human prefixes under each decoding; trim each
pair to the same length; split the humans into calibration and test; score every text (clean,
under each attack, and sanitised) with every detector; then the rates (``report``). Nothing is
written here: ``report.write_detection`` writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...errors import ConfigError, ModelError, QueryError
from .attacks import ATTACKS, attack_seed, parse_attacks, sanitise
from .detectors import PAIRED, DetectorSet, parse_detectors
from .generation import continuations, document_seed, parse_decodings
from .report import DetectionReport, ScoredText, build_report
from .texts import (HUMAN, MACHINE, Text, check_domains, check_held_out, check_pairs, corpus_texts, longest_spans,
                    read_texts, split_texts, trim_groups)


@dataclass
class DetectSettings:
    """How detectors are tested (every field is a ``seethrough detect`` flag)."""
    detectors: str | None = None
    """Comma list: likelihood, logrank, rank, entropy, gltr, lrr, zlib, fast_detect_gpt (one_pass), the
    paired fast_detect_gpt_reference, binoculars, binoculars_paper (need --reference), all, or a
    callable module:function (texts -> scores, higher = machine). Default: the eight one-pass ones
    (and the paired ones with --reference)."""
    decoding: str | None = None
    """Comma list of decodings for generated machine text: greedy, sampling, temperature_T, top_p_P,
    top_k_K, each optionally +rep (repetition penalty 1.2) or +rep_X. Default: all ten of greedy,
    sampling, temperature_0.7, top_p_0.96, top_k_40, with and without +rep."""
    attacks: str | None = None
    """Comma list of attacks applied to machine and, separately, to human text: homoglyph,
    zero_width_space, whitespace, upper_lower, article_deletion, insert_paragraphs, number,
    misspelling, adjacent_swap; all (default) or none."""
    calibration_share: float = 0.5
    """Share of the human texts (per domain) whose scores set the thresholds; the rest measure the
    realised false-positive rate."""
    prefix_tokens: int = 30
    """Tokens of each human text the generator continues."""
    max_copied_span: int = 13
    """A human text sharing a span of this many tokens with the training data is left out (listed)."""
    min_humans_above: int = 1
    """A rate is estimable when floor(rate x calibration humans) reaches this; else "not estimable"
    (1: one human may lie above the threshold; 10 follows the 10/rate rule)."""
    rounds: int = 1000
    """Bootstrap resamples for the intervals of TPR and AUROC."""
    seed: int = 0
    """Seed of the split, the generation, the attacks and the bootstrap."""
    domain_field: str = "domain"
    """The metadata field whose values are the domains (breakdown and transfer table)."""
    batch_size: int = 32
    """Texts per forward pass when scoring (equal-length texts share a batch); generation decodes 8
    times as many rows at once (one new token each per pass)."""

    def __post_init__(self) -> None:
        if not 0 < self.calibration_share < 1:
            raise ConfigError(f"--calibration-share {self.calibration_share}: give a share strictly between 0 and 1")
        for name, low in (("prefix_tokens", 1), ("max_copied_span", 1), ("min_humans_above", 1), ("rounds", 0),
                          ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"--{name.replace('_', '-')} {value!r}: give a whole number of at least {low}")
        if not self.domain_field:
            raise ConfigError("--domain-field is empty; name a metadata field (default: domain)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_tokenizer(target: Any) -> Any:
    """The tokenizer a resolved target reads text with: its run's corpus's, or the folder's own."""
    from ...corpus.tokenizer import load_tokenizer

    if target.run is not None:
        return target.run.corpus.require_tokenizer()
    file = Path(target.last.path) / "tokenizer.json"
    if not file.exists():
        raise ModelError(f"model {target.last.path} has no tokenizer.json, so its text cannot be read; save the "
                         "model's fast tokenizer into its folder")
    return load_tokenizer(file)


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two loaded tokenizers give every token the same id."""
    return a.sha256 == b.sha256 or a.tokenizer.get_vocab(with_added_tokens=True) == \
        b.tokenizer.get_vocab(with_added_tokens=True)


def _training_index(target: Any, training_corpus: Any) -> Any:
    """The index of the training data: ``training_corpus`` (checked against the model) or a run's own."""
    from ...index import open_corpus

    if training_corpus is not None:
        index = training_corpus if hasattr(training_corpus, "longest_matches_many") else open_corpus(training_corpus)
        target.check_corpus(index)
        return index
    return target.run.index if target.run is not None else None


def _human_texts(human: Any, corpus: Any, domain_field: str) -> list[Text]:
    from ...corpus.store import open_token_corpus

    if (human is None) == (corpus is None):
        raise QueryError("give the human text as --human FILE or --corpus C, exactly one of them")
    if corpus is not None:
        opened = corpus if hasattr(corpus, "document") else open_token_corpus(corpus)
        return corpus_texts(opened, domain_field)
    if isinstance(human, (str, Path)):
        return read_texts(human, HUMAN, "--human", domain_field)
    return [t if isinstance(t, Text) else Text(str(t.get("id", f"human-{i}")), HUMAN, t["text"],
                                               t.get(domain_field)) for i, t in enumerate(human)]


def _unique(texts: list[Text], label: str) -> list[Text]:
    seen: set[str] = set()
    for t in texts:
        if t.id in seen:
            raise QueryError(f"{label} text id {t.id!r} is used twice; give every text its own id")
        seen.add(t.id)
    return texts


def _machine_texts(machine: Any, domain_field: str) -> list[Text]:
    if isinstance(machine, (str, Path)):
        return read_texts(machine, MACHINE, "--machine", domain_field)
    return [t if isinstance(t, Text) else Text(str(t.get("id", f"machine-{i}")), MACHINE, t["text"],
                                               t.get(domain_field), t.get("human_id"), t.get("decoding"))
            for i, t in enumerate(machine)]


def generate_machine_texts(model: Any, tokenizer: Any, humans: list[Text], decodings: Any, prefix_tokens: int,
                           seed: int, batch_size: int = 64,
                           progress: Callable[[str], None] | None = None) -> tuple[list[Text], list[str]]:
    """For each decoding and each human text longer than ``prefix_tokens`` tokens: the model's
    continuation of its first ``prefix_tokens`` tokens to the human text's length in tokens (the
    end-of-text token masked). Returns the texts and the ids of humans too short to continue."""
    rows = tokenizer.encode_batch([h.text for h in humans])
    usable = [i for i, r in enumerate(rows) if len(r) > prefix_tokens]
    too_short = [humans[i].id for i in range(len(humans)) if len(rows[i]) <= prefix_tokens]
    ends = [model.config.eos_token_id, getattr(model.config, "pad_token_id", None)]
    forbidden = sorted({t for e in ends for t in (e if isinstance(e, (list, tuple)) else [e]) if isinstance(t, int)})
    context = getattr(model.config, "max_position_embeddings", None) or 1 << 30
    prompts = [rows[i][:prefix_tokens] for i in usable]
    lengths = [min(len(rows[i]), context) - prefix_tokens for i in usable]  # never past the model's context
    out: list[Text] = []
    for decoding in decodings:
        if progress:
            progress(f"generating ({decoding.name}, {len(prompts)} texts)")
        seeds = [document_seed(seed, humans[i].id, decoding.name) for i in usable]
        new = continuations(model, prompts, lengths, decoding, seeds, batch_size, forbidden)
        for i, prompt, tokens in zip(usable, prompts, new):
            h = humans[i]
            out.append(Text(f"{h.id}/{decoding.name}", MACHINE, tokenizer.decode(prompt + tokens), h.domain, h.id,
                            decoding.name))
    return out, too_short


def _scorable(humans: list[Text], machines: list[Text], tokenizer: Any) -> tuple[list[Text], list[Text], list[str]]:
    """The texts with at least 2 tokens (a detector scores tokens 2..n), and the ids of the others."""
    def keep(texts: list[Text]) -> list[Text]:
        counts = [len(ids) for ids in tokenizer.encode_batch([t.text for t in texts])] if texts else []
        return [t for t, n in zip(texts, counts) if n >= 2]

    kept_humans, kept_machines = keep(humans), keep(machines)
    left = {(t.label, t.id) for t in kept_humans + kept_machines}
    return kept_humans, kept_machines, [t.id for t in humans + machines if (t.label, t.id) not in left]


def _scores_of(detectors: DetectorSet, texts: list[str], cache: dict[str, dict[str, float]]) -> None:
    """Score every text not scored yet (identical texts, such as an attack that found nothing to
    change, are scored once)."""
    todo = list(dict.fromkeys(t for t in texts if t not in cache))
    if not todo:
        return
    scored = detectors.score(todo)
    for j, text in enumerate(todo):
        cache[text] = {name: float(values[j]) for name, values in scored.items()}


def evaluate_detectors(target: Any, human: Any = None, corpus: Any = None, machine: Any = None,
                       generator: Any = None, reference: Any = None, settings: DetectSettings | None = None,
                       checkpoint: str | None = None, training_corpus: Any = None, device: str = "cpu",
                       threads: int | None = None,
                       progress: Callable[[str], None] | None = None) -> DetectionReport:
    """Test the detectors on human and machine text with the scoring model ``target`` (a run folder,
    a model folder or a resolved ``ModelTarget``).

    ``human``: a JSON-lines path or a list of ``Text`` / ``{"text", "id"?, domain?}``; or ``corpus``: a
    corpus folder whose documents are the human texts. Human text is checked against the training
    data's index (``training_corpus``, or a run's own corpus when its index is built); with
    ``corpus`` the check is required. ``machine``: given machine texts (path or list), else generated
    by ``generator`` (default: the scoring model). ``reference``: a model folder or run on the same
    tokenizer, for the paired detectors."""
    from ..._files import sha256_json
    from ...model import ModelTarget, load_model, resolve_target

    settings = settings or DetectSettings()
    say = progress or (lambda _: None)
    decodings = parse_decodings(settings.decoding) if machine is None else ()
    if machine is not None and (generator is not None or settings.decoding is not None):
        raise ConfigError("--generator and --decoding have no effect with --machine (nothing is generated); "
                          "leave them out")
    attacks = parse_attacks(settings.attacks)
    names = parse_detectors(settings.detectors, reference is not None)
    if checkpoint is not None and not (checkpoint == "last" or (checkpoint.isascii() and checkpoint.isdigit())):
        raise QueryError(f"--checkpoint {checkpoint!r} takes one step (or last)")
    resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoint)
    tokenizer = model_tokenizer(resolved)
    reference_target = None
    if reference is not None:  # refused before any work when its vocabulary is another
        reference_target = reference if isinstance(reference, ModelTarget) else resolve_target(reference)
        if not same_vocabulary(tokenizer, model_tokenizer(reference_target)):
            raise ModelError(f"--reference {reference_target.path} reads text with another vocabulary than "
                             f"{resolved.path}; the paired detectors ({', '.join(PAIRED)}) need two models on one "
                             "tokenizer")
    notes: list[str] = []

    index = _training_index(resolved, training_corpus)
    if index is None and corpus is not None:
        raise QueryError("--corpus documents must be checked against the training data, and this model has no "
                         "index of it: give a run whose corpus is indexed, or --training-corpus C (indexed)")
    humans = _unique(_human_texts(human, corpus, settings.domain_field), "human")
    held_out = None
    if index is not None:
        say(f"checking {len(humans)} human texts against the training data")
        held_out = check_held_out(index, humans, tokenizer.encode_batch([h.text for h in humans]),
                                  settings.max_copied_span)
        refused = {r["id"] for r in held_out.refused}
        humans = [h for h in humans if h.id not in refused]
        if refused:
            notes.append(f"{len(refused)} human text(s) share a span of {settings.max_copied_span}+ tokens with the "
                         "training data and were left out (listed in detect.json under texts.held_out.refused)")
    else:
        notes.append("human texts not checked against the training data (no index of it: give a run with an indexed "
                     "corpus or --training-corpus)")
    if not humans:
        raise QueryError("no human text is left after the held-out check; give text that is not in the training data")

    model = load_model(resolved.last, device=device, threads=threads)
    too_short: list[str] = []
    if machine is not None:
        machines = check_pairs(humans, _unique(_machine_texts(machine, settings.domain_field), "machine"))
        generator_target = None
    else:
        generator_target = resolved if generator is None else (
            generator if isinstance(generator, ModelTarget) else resolve_target(generator))
        gen_model = model if generator is None else load_model(generator_target.last, device=device, threads=threads)
        gen_tokenizer = tokenizer if generator is None else model_tokenizer(generator_target)
        machines, too_short = generate_machine_texts(gen_model, gen_tokenizer, humans, decodings,
                                                     settings.prefix_tokens, settings.seed, 8 * settings.batch_size, say)
        if too_short:
            notes.append(f"{len(too_short)} human text(s) have at most {settings.prefix_tokens} tokens, so no machine "
                         "text continues them (they still serve as human text)")
        if not machines:
            raise QueryError(f"no human text is longer than --prefix-tokens {settings.prefix_tokens} tokens, so "
                             "nothing can be generated; give longer texts or fewer prefix tokens")
    humans, machines = trim_groups(humans, machines)
    humans, machines, unscorable = _scorable(humans, machines, tokenizer)
    if unscorable:
        notes.append(f"{len(unscorable)} text(s) have fewer than 2 tokens, so no detector can score them; left out: "
                     f"{', '.join(unscorable[:5])}{' ...' if len(unscorable) > 5 else ''}")
    notes += check_domains(humans, machines)
    humans, machines = split_texts(humans, machines, settings.calibration_share, settings.seed)

    reference_model = None
    if reference_target is not None:
        reference_model = load_model(reference_target.last, device=device, threads=threads)
    max_tokens = getattr(model.config, "max_position_embeddings", None)
    detectors = DetectorSet(names, model, tokenizer, reference_model, settings.batch_size, max_tokens)

    # every text to score: clean, attacked (each attack on every text), sanitised (clean and attacked)
    clean = humans + machines
    variants: list[tuple[Text, str | None, str | None, str]] = [(t, None, None, t.text) for t in clean]
    for name in attacks:
        attack = ATTACKS[name]
        variants += [(t, name, None, attack(t.text, attack_seed(settings.seed, t.id, name))) for t in clean]
    variants += [(t, a, "sanitise", sanitise(s)) for t, a, d, s in list(variants)]
    cache: dict[str, dict[str, float]] = {}
    say(f"scoring {len({v[3] for v in variants})} distinct texts with {len(names)} detector(s)")
    _scores_of(detectors, [v[3] for v in variants], cache)
    counts = dict(zip(cache, detectors.token_counts(list(cache))))
    spans = dict(zip([t.text for t in clean], (s for s, _ in longest_spans(index, tokenizer.encode_batch(
        [t.text for t in clean]))))) if index is not None else {}
    records = [ScoredText(t, a, d, counts[s], cache[s], spans.get(s) if a is None and d is None else None, s)
               for t, a, d, s in variants]
    if max_tokens and any(c > max_tokens for c in counts.values()):
        notes.append(f"texts over the model's {max_tokens} positions were scored on their first {max_tokens} tokens")

    models = {"scoring": {"path": str(resolved.last.path), "step": resolved.last.step,
                          "weights_sha256": resolved.last.weights_sha256}}
    if generator_target is not None:
        models["generator"] = {"path": str(generator_target.last.path), "step": generator_target.last.step,
                               "weights_sha256": generator_target.last.weights_sha256}
    if reference_target is not None:
        models["reference"] = {"path": str(reference_target.last.path), "step": reference_target.last.step,
                               "weights_sha256": reference_target.last.weights_sha256}
    config = {**settings.to_dict(), "detectors": list(names), "decoding": [d.to_dict() for d in decodings],
              "attacks": list(attacks), "given_machine_text": machine is not None}
    hashes = {"models_sha256": sha256_json({k: v["weights_sha256"] for k, v in models.items()}),
              "texts_sha256": sha256_json([[t.id, t.label, t.text] for t in clean]),
              "config_sha256": sha256_json(config)}
    texts_info = {"humans": len(humans), "machines": len(machines),
                  "held_out": held_out.to_dict() if held_out is not None else None,
                  "too_short_to_continue": too_short}
    say("computing rates and intervals")
    return build_report(records, list(names), settings, hashes, models, config, texts_info, notes,
                        [d.name for d in decodings] or sorted({m.decoding for m in machines if m.decoding}),
                        list(attacks))
