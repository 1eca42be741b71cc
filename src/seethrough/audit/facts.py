"""Stated, derived or guessed: for every answer the model gets right, did its data say so?

Per question (``fact_questions``: subject, prompt, answer, candidates, optional hops, format, group):

- **The model's answer.** ``direct`` items: every candidate is scored by the log-likelihood of
  ``delimiter + candidate`` after the prompt (the delimiter is lm-eval's ``target_delimiter``, one
  space by default), through seethrough's eval backend (``evaluate.backend.SeethroughLM``, whose
  numbers are lm-eval's ``hf`` ranking's). ``predicted`` is the best candidate (the first of equals,
  as lm-eval's ``argmax``), ``rank`` the answer's place (1 = best; an equal candidate listed before
  it ranks ahead), ``p_answer`` its softmax share over the candidates, ``logprob_answer`` its
  log-likelihood. ``chain`` items: greedy generation after the prompt, stopped at the end-of-document
  token or a newline (``max_new_tokens``, 32 by default); ``predicted`` is the candidate mentioned last
  in the generated text (as a whole word; ``chain`` records the text), and each bridge (every hop's
  answer but the last) is checked for being named in it. ``rank`` and ``p_answer`` are null for chain
  items. ``prior``: the answer's share of the corpus occurrences of all candidates (index counts), the
  score of always answering by frequency.
- **The evidence** (``cooccurrence``): the documents where subject and answer co-occur (within
  ``window`` tokens, start to start, or anywhere in one document), exact; with a run, the first and
  last step before the checkpoint that trained on a row holding a co-occurrence, how many (step, row)
  trainings that was (``exposures``), and whether subject and answer were ever inside one training row
  (``same_row``, any documents). The same for every hop.
- **Category** (from documents, so the same at every checkpoint): ``stated`` when subject and answer
  co-occur in a document; otherwise, with hops, ``derivable`` when every hop is stated and
  ``unknowable`` when one is not; without hops ``not_stated``. ``same_row`` is reported beside the
  category and does not change it: packing puts unrelated documents in one row, so almost every
  frequent answer shares some row with a subject, and a category built on rows would call most
  unknowable facts stated.
- **Aggregates** per checkpoint and category x format x group x relation: n, correct, accuracy
  with its Wilson 95% interval, chance (the mean of 1/candidates), the exact one-sided p-value of
  that many right by chance, and against the control group (``control``: the same format and
  relation, when the row has one) its accuracy and the Newcombe 95% interval of the difference.
  Verdicts claim only what the interval supports: ``recalled`` (stated, the difference's lower bound
  above 0), ``derived above control`` (derivable, the same), ``above control`` (any other category,
  the same), ``below control`` (the upper bound under 0), ``not distinguishable from control``
  (otherwise), ``control`` for the control group's own rows. Without a control (or without control
  items of that format and relation) the baseline is chance and the Wilson interval is compared with
  it: ``recalled``, ``derived above chance``, ``above chance``, ``below chance``, ``not
  distinguishable from chance``.
- **Over checkpoints**: per item the first checkpoint answered correctly, the exposures of its
  evidence before that step, and whether it stays correct at every later checkpoint chosen.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..errors import ConfigError, QueryError, RunError
from .cooccurrence import Mentions, PairEvidence, count_training, entity_forms, find_mentions, pair_evidence
from .fact_questions import FactQuestion, parse_questions, read_questions
from .intervals import newcombe_interval, p_at_least, wilson_interval

__all__ = ["FactQuestion", "FactResult", "FactsReport", "FactsSettings", "QuestionEvidence", "aggregate",
           "audit_facts", "find_evidence", "parse_questions", "read_questions", "write_facts"]

CATEGORIES = ("stated", "derivable", "unknowable", "not_stated")


@dataclass
class FactsSettings:
    window: int | None = None
    """Count subject and answer as co-occurring only when they start at most this many tokens apart (default:
    anywhere in the same document)."""
    max_documents: int = 100
    """Document indexes listed per item and hop (count is always the full number)."""
    delimiter: str = " "
    """Text between the prompt and each candidate when ranking (default: one space, lm-eval's target_delimiter)."""
    control: str | None = None
    """The control group (known subjects, facts never stated): each group's accuracy is compared with its accuracy
    on the same format and relation (default: with chance)."""
    max_new_tokens: int = 32
    """Tokens generated for chain-format items (stopping earlier at end of document or a newline)."""

    def __post_init__(self) -> None:
        if self.window is not None and (isinstance(self.window, bool) or not isinstance(self.window, int)
                                        or self.window < 1):
            raise ConfigError(f"--window {self.window}: give at least 1 token, or leave it out to count "
                              "co-occurrences anywhere in a document")
        if isinstance(self.max_documents, bool) or not isinstance(self.max_documents, int) or self.max_documents < 0:
            raise ConfigError(f"--max-documents {self.max_documents}: give 0 or more documents to list")
        if not isinstance(self.delimiter, str):
            raise ConfigError(f"--delimiter {self.delimiter!r} must be text (one space, lm-eval's default)")
        if self.control is not None and (not isinstance(self.control, str) or not self.control.strip()):
            raise ConfigError(f"--control {self.control!r}: name the control group as the questions' group field does")
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int) \
                or self.max_new_tokens < 1:
            raise ConfigError(f"--max-new-tokens {self.max_new_tokens}: generate at least 1 token")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_control(questions: list[FactQuestion], control: str | None) -> None:
    """Refuse a control group that no question belongs to."""
    if control is None:
        return
    groups = sorted({q.group for q in questions if q.group is not None})
    if control not in groups:
        have = f"the groups are {', '.join(groups)}" if groups else "no question has a group"
        raise ConfigError(f"--control {control}: no question is in group {control!r}; {have}")


# ---- evidence --------------------------------------------------------------------------------------------


@dataclass
class QuestionEvidence:
    """What the corpus (and the run's data order) says about one question."""
    pair: PairEvidence
    hops: list[PairEvidence]
    category: str
    candidate_counts: list[int]
    """Corpus occurrences of each candidate (its forms), in the question's candidate order."""
    answer_count: int

    @property
    def prior(self) -> float | None:
        total = sum(self.candidate_counts)
        return self.answer_count / total if total else None


def categorize(pair: PairEvidence, hops: list[PairEvidence]) -> str:
    if pair.stated:
        return "stated"
    if hops:
        return "derivable" if all(h.stated for h in hops) else "unknowable"
    return "not_stated"


def find_evidence(index: Any, questions: list[FactQuestion], settings: FactsSettings | None = None,
                  run: Any = None, before_step: int | None = None) -> list[QuestionEvidence]:
    """The evidence of each question, in order (see the module docstring). ``run``: a ``train.Run``
    over this corpus, for rows and steps (counted up to ``before_step``, default all it trained).

    Every entity (subject, answer, hop subjects and answers, candidates) must encode to known tokens
    of the corpus tokenizer; the first that does not is named with its question's line."""
    settings = settings or FactsSettings()
    if run is not None and run.corpus.corpus_hash != index.corpus.corpus_hash:
        raise RunError(f"corpus {index.path} is not the corpus run {run.path} was trained on; pass the run's own "
                       "corpus")
    forms: dict[str, list[list[int]]] = {}

    def forms_of(text: str, what: str, question: FactQuestion) -> list[list[int]]:
        if text not in forms:
            try:
                forms[text] = entity_forms(index, text)
            except QueryError as error:
                raise QueryError(f"{question.where}: {what} {text!r} {error}; write it as the corpus spells it, "
                                 "or fix the line") from None
        return forms[text]

    for q in questions:  # every entity checked before anything is searched
        forms_of(q.subject, "subject", q)
        forms_of(q.answer, "answer", q)
        for number, hop in enumerate(q.hops, start=1):
            forms_of(hop.subject, f"hop {number} subject", q)
            forms_of(hop.answer, f"hop {number} answer", q)
        for candidate in q.candidates:
            forms_of(candidate, "candidate", q)
    counts = _entity_counts(index, forms)
    mentions: dict[str, Mentions] = {}
    pairs: dict[tuple[str, str], PairEvidence] = {}

    def pair(subject: str, answer: str) -> PairEvidence:
        for text in (subject, answer):
            if text not in mentions:
                mentions[text] = find_mentions(index, text, forms[text])
        if (subject, answer) not in pairs:
            pairs[(subject, answer)] = pair_evidence(mentions[subject], mentions[answer], settings.window,
                                                     run.order if run is not None else None)
        return pairs[(subject, answer)]

    out = []
    for q in questions:
        main = pair(q.subject, q.answer)
        hops = [pair(h.subject, h.answer) for h in q.hops]
        out.append(QuestionEvidence(main, hops, categorize(main, hops), [counts[c] for c in q.candidates],
                                    counts[q.answer]))
    if run is not None:
        steps = run.steps_trained if before_step is None else before_step
        run.require_steps(steps, "before_step", steps)  # past the run's end the data order holds untrained batches
        count_training(run.order, list(pairs.values()), steps)
    return out


def _entity_counts(index: Any, forms: dict[str, list[list[int]]]) -> dict[str, int]:
    """Occurrences of each entity: the sum over its forms (which never share a mention), in one batch."""
    texts = list(forms)
    flat = [f for t in texts for f in forms[t]]
    found = iter(index.count_many(flat) if flat else [])
    return {t: sum(next(found) for _ in forms[t]) for t in texts}


# ---- the model's answers ---------------------------------------------------------------------------------


@dataclass
class ModelAnswer:
    predicted: str | None
    correct: bool
    rank: int | None = None
    p_answer: float | None = None
    logprob_answer: float | None = None
    logprobs: list[float] | None = None
    """Each candidate's log-likelihood, in candidate order (direct items)."""
    chain: str | None = None
    named: list[bool] | None = None
    """Chain items: for each bridge (every hop's answer but the last), whether the chain names it."""


def rank_candidates(lm: Any, questions: list[FactQuestion], delimiter: str = " ") -> list[ModelAnswer]:
    """Direct answers: every candidate's log-likelihood after the prompt, one ``lm.loglikelihood`` call
    (``lm``: any lm-eval LM; seethrough's backend in the audit)."""
    requests = [SimpleNamespace(args=(q.prompt, delimiter + c)) for q in questions for c in q.candidates]
    scores = iter([float(s) for s, _ in lm.loglikelihood(requests)] if requests else [])
    answers = []
    for q in questions:
        values = [next(scores) for _ in q.candidates]
        answers.append(answer_from_scores(q, values))
    return answers


def answer_from_scores(question: FactQuestion, values: list[float]) -> ModelAnswer:
    """Prediction, rank, softmax share and log-likelihood of the answer, from the candidates' scores."""
    best = int(np.argmax(values))  # the first of equals
    k = question.candidates.index(question.answer)
    mine = values[k]
    rank = 1 + sum(v > mine for v in values) + sum(v == mine for v in values[:k])
    top = max(values)
    share = math.exp(mine - top) / sum(math.exp(v - top) for v in values)
    return ModelAnswer(question.candidates[best], best == k, rank, share, mine, list(values))


def _mention_pattern(text: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(text) + r"(?!\w)")


def last_candidate(text: str, candidates: list[str]) -> str | None:
    """The candidate mentioned last in ``text`` as a whole word (the one ending last; of two ending together,
    the longer), or None."""
    best: tuple[int, int] | None = None
    chosen = None
    for candidate in candidates:
        for match in _mention_pattern(candidate).finditer(text):
            key = (match.end(), match.end() - match.start())
            if best is None or key > best:
                best, chosen = key, candidate
    return chosen


def generate_chains(lm: Any, questions: list[FactQuestion], max_new_tokens: int = 32,
                    stop_ids: tuple[int, ...] = ()) -> list[ModelAnswer]:
    """Chain answers: greedy text after each prompt (batched, the model layer's decoder), cut at the first
    end-of-document token (``lm.eot_token_id`` and ``stop_ids``) or newline."""
    from ..model import greedy_continuations

    if not questions:
        return []
    room = lm.max_length - max_new_tokens
    prompts = [lm.tok_encode(q.prompt, left_truncate_len=room if room > 0 else None) for q in questions]
    stops = {int(i) for i in (lm.eot_token_id, *stop_ids) if i is not None}
    answers = []
    for q, tokens in zip(questions, greedy_continuations(lm.model, prompts, max_new_tokens)):
        kept = []
        for token in tokens:
            if token in stops:
                break
            kept.append(token)
        text = lm.tok_decode(kept).split("\n")[0]
        predicted = last_candidate(text, q.candidates)
        named = [bool(_mention_pattern(h.answer).search(text)) for h in q.hops[:-1]]
        answers.append(ModelAnswer(predicted, predicted == q.answer, chain=text, named=named))
    return answers


# ---- results ---------------------------------------------------------------------------------------------


def _documents(pair: PairEvidence, limit: int) -> list[int]:
    return [int(d) for d in pair.documents[:limit]]


@dataclass
class FactResult:
    """One question answered by one checkpoint, with its evidence counted before that checkpoint's step."""
    question: FactQuestion
    evidence: QuestionEvidence
    checkpoint: str
    step: int | None
    answer: ModelAnswer

    @property
    def correct(self) -> bool:
        return self.answer.correct

    @property
    def category(self) -> str:
        return self.evidence.category

    def seen(self) -> dict[str, Any]:
        return self.evidence.pair.seen_before(self.step)

    def hop_seen(self) -> list[dict[str, Any]]:
        return [h.seen_before(self.step) for h in self.evidence.hops]

    def exposures(self) -> int | None:
        """The exposures its category rests on: the subject-answer co-occurrence's when stated, else the
        least exposed hop's (0 when a hop is never stated); None without a run."""
        own = self.seen()["exposures"]
        if own is None:
            return None
        if self.category == "stated" or not self.evidence.hops:
            return own
        return min(h["exposures"] for h in self.hop_seen())

    def to_dict(self, max_documents: int = 100) -> dict[str, Any]:
        q, e, a = self.question, self.evidence, self.answer
        hops = []
        for number, (hop, pair, seen) in enumerate(zip(q.hops, e.hops, self.hop_seen())):
            bridge = a.named[number] if a.named is not None and number < len(a.named) else None
            hops.append({"subject": hop.subject, "answer": hop.answer, "stated": pair.stated, "count": pair.count,
                         "documents": _documents(pair, max_documents), **seen, "named": bridge})
        return {"id": q.id, "checkpoint": self.checkpoint, "step": self.step, "category": e.category,
                "predicted": a.predicted, "correct": a.correct, "rank": a.rank, "p_answer": a.p_answer,
                "logprob_answer": a.logprob_answer, "prior": e.prior,
                "evidence": {"count": e.pair.count, "documents": _documents(e.pair, max_documents), **self.seen(),
                             "forms": {"subject": e.pair.subject_forms, "answer": e.pair.answer_forms}},
                "hops": hops, "subject": q.subject, "answer": q.answer, "group": q.group, "relation": q.relation,
                "format": q.format, "chain": a.chain, "candidates": len(q.candidates),
                "candidate_logprobs": a.logprobs}


# ---- aggregates ------------------------------------------------------------------------------------------


def _share(correct: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else None, "accuracy_ci": [lo, hi]}


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _order(key: tuple) -> tuple:
    category, *rest = key
    return (CATEGORIES.index(category) if category in CATEGORIES else len(CATEGORIES),
            *[("" if v is None else str(v)) for v in rest])


def _verdict(category: str, baseline: str, above: bool, below: bool) -> str:
    if above:
        return {"stated": "recalled", "derivable": f"derived above {baseline}"}.get(category, f"above {baseline}")
    return f"below {baseline}" if below else f"not distinguishable from {baseline}"


def aggregate(results: list[FactResult], control: str | None = None) -> list[dict[str, Any]]:
    """One row per category x format x group x relation (see the module docstring for the verdicts)."""
    groups: dict[tuple, list[FactResult]] = {}
    for r in results:
        q = r.question
        groups.setdefault((r.category, q.format, q.group, q.relation), []).append(r)
    controls: dict[tuple, list[FactResult]] = {}
    for r in results:
        if control is not None and r.question.group == control:
            controls.setdefault((r.question.format, r.question.relation), []).append(r)
    rows = []
    for key in sorted(groups, key=_order):
        category, form, group, relation = key
        members = groups[key]
        n, correct = len(members), sum(r.correct for r in members)
        chances = [1 / len(r.question.candidates) for r in members]
        row: dict[str, Any] = {"category": category, "format": form, "group": group, "relation": relation,
                               **_share(correct, n), "chance": sum(chances) / n,
                               "p_vs_chance": p_at_least(correct, chances),
                               "mean_p_answer": _mean([r.answer.p_answer for r in members]),
                               "mean_logprob_answer": _mean([r.answer.logprob_answer for r in members]),
                               "mean_prior": _mean([r.evidence.prior for r in members]),
                               "control": None, "difference": None, "difference_ci": None}
        reference = [] if control is None else (controls.get((form, relation), []) if relation is not None else
                                                [r for (f, _), rs in controls.items() if f == form for r in rs])
        if control is not None and group == control:
            row.update(baseline="control", verdict="control")
        elif reference:
            c_n, c_correct = len(reference), sum(r.correct for r in reference)
            lo, hi = newcombe_interval(correct, n, c_correct, c_n)
            row.update(control={"group": control, **_share(c_correct, c_n)}, difference=correct / n - c_correct / c_n,
                       difference_ci=[lo, hi], baseline="control",
                       verdict=_verdict(category, "control", lo > 0, hi < 0))
        else:
            lo, hi = row["accuracy_ci"]
            row.update(baseline="chance", verdict=_verdict(category, "chance", lo > row["chance"], hi < row["chance"]))
        rows.append(row)
    return rows


def exposure_bucket(exposures: int) -> int:
    """Powers of two: 0, 1, 2-3 -> 2, 4-7 -> 4, ..."""
    return 0 if exposures <= 0 else 1 << (int(exposures).bit_length() - 1)


def by_exposures(results: list[FactResult]) -> list[dict[str, Any]]:
    """Accuracy per category x format x group and exposure bucket (items with a run only)."""
    groups: dict[tuple, list[FactResult]] = {}
    for r in results:
        exposures = r.exposures()
        if exposures is not None:
            groups.setdefault((r.category, r.question.format, r.question.group, exposure_bucket(exposures)),
                              []).append(r)
    rows = []
    for key in sorted(groups, key=lambda k: (*_order(k[:3]), k[3])):
        members = groups[key]
        rows.append({"category": key[0], "format": key[1], "group": key[2], "exposures": key[3],
                     **_share(sum(r.correct for r in members), len(members))})
    return rows


# ---- the report ------------------------------------------------------------------------------------------


@dataclass
class FactsReport:
    """What ``audit_facts`` found: per checkpoint label (``step-N`` or the model folder's name), one result
    per question, in question order."""
    questions: list[FactQuestion]
    evidence: list[QuestionEvidence]
    settings: FactsSettings
    results: dict[str, list[FactResult]] = field(default_factory=dict)
    checkpoints: dict[str, Any] = field(default_factory=dict)
    """Label -> the ``model.Checkpoint`` whose weights answered."""

    def first_learned(self) -> list[dict[str, Any]]:
        """Per question (with a run's checkpoints): the first step answered correctly, the exposures before it,
        and whether every later checkpoint chosen answers it correctly too."""
        labels = [label for label, c in self.checkpoints.items() if getattr(c, "step", None) is not None]
        if not labels or len(labels) != len(self.results):
            return []
        labels.sort(key=lambda label: self.checkpoints[label].step)
        table = []
        for i, q in enumerate(self.questions):
            series = [self.results[label][i] for label in labels]
            first = next((k for k, r in enumerate(series) if r.correct), None)
            learned = series[first] if first is not None else None
            table.append({"id": q.id, "group": q.group, "category": self.evidence[i].category, "format": q.format,
                          "relation": q.relation, "first_correct_step": learned.step if learned else None,
                          "exposures_before": learned.exposures() if learned else None,
                          "evidence_exposures_before": learned.seen()["exposures"] if learned else None,
                          "hop_exposures_before": [h["exposures"] for h in learned.hop_seen()] if learned else None,
                          "stays_correct": all(r.correct for r in series[first:]) if learned else None})
        return table

    def summary(self) -> dict[str, Any]:
        """Settings, category counts, per checkpoint the aggregates and accuracy by exposures, and the
        first-learned table with its per-group medians."""
        categories: dict[str, int] = {}
        for e in self.evidence:
            categories[e.category] = categories.get(e.category, 0) + 1
        first = self.first_learned()
        return {"settings": self.settings.to_dict(), "questions": len(self.questions), "categories": categories,
                "checkpoints": [{"checkpoint": label, "step": getattr(self.checkpoints.get(label), "step", None),
                                 "aggregates": aggregate(items, self.settings.control),
                                 "by_exposures": by_exposures(items)} for label, items in self.results.items()],
                "first_learned": {"items": first, "by_group": _first_learned_groups(first)}}

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary(),
                "results": {label: [r.to_dict(self.settings.max_documents) for r in items]
                            for label, items in self.results.items()}}


def _median(values: list[int]) -> float | None:
    return float(np.median(values)) if values else None


def _first_learned_groups(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in table:
        groups.setdefault((row["category"], row["format"], row["group"], row["relation"]), []).append(row)
    out = []
    for key in sorted(groups, key=_order):
        rows = groups[key]
        learned = [r for r in rows if r["first_correct_step"] is not None]
        out.append({"category": key[0], "format": key[1], "group": key[2], "relation": key[3], "n": len(rows),
                    "learned": len(learned), "stays_correct": sum(bool(r["stays_correct"]) for r in learned),
                    "median_first_correct_step": _median([r["first_correct_step"] for r in learned]),
                    "median_exposures_before": _median([r["exposures_before"] for r in learned
                                                        if r["exposures_before"] is not None])})
    return out


def audit_facts(target: Any, index: Any, questions: list[FactQuestion], settings: FactsSettings | None = None,
                checkpoints: str | None = None, threads: int | None = None, device: str = "cpu") -> FactsReport:
    """Answer every question with each chosen checkpoint of ``target`` (a run or model folder, or a resolved
    ``model.ModelTarget``; ``checkpoints``: last, all or steps) and set each answer beside its evidence in
    ``index`` (the indexed corpus the model was trained on: checked first). Writes nothing."""
    from ..evaluate.backend import SeethroughLM
    from ..model import ModelTarget, resolve_target

    settings = settings or FactsSettings()
    check_control(questions, settings.control)
    resolved = target if isinstance(target, ModelTarget) else resolve_target(target, checkpoints)
    resolved.check_corpus(index)
    run = resolved.run
    steps = [c.step for c in resolved.checkpoints if c.step is not None]
    evidence = find_evidence(index, questions, settings, run, max(steps) if run is not None and steps else None)
    report = FactsReport(questions, evidence, settings)
    direct = [i for i, q in enumerate(questions) if q.format == "direct"]
    chain = [i for i, q in enumerate(questions) if q.format == "chain"]
    stop = (run.order.spec.eod_id,) if run is not None else ()
    for checkpoint in resolved.checkpoints:
        # transformers: its greedy decoding runs untiled, where the plain GPT-NeoX's last bits may differ
        lm = SeethroughLM(checkpoint, threads=threads, device=device, implementation="transformers")
        answers: list[ModelAnswer | None] = [None] * len(questions)
        for i, a in zip(direct, rank_candidates(lm, [questions[i] for i in direct], settings.delimiter)):
            answers[i] = a
        for i, a in zip(chain, generate_chains(lm, [questions[i] for i in chain], settings.max_new_tokens, stop)):
            answers[i] = a
        report.results[checkpoint.label] = [FactResult(q, e, checkpoint.label, checkpoint.step, a)
                                            for q, e, a in zip(questions, evidence, answers) if a is not None]
        report.checkpoints[checkpoint.label] = checkpoint
    return report


# ---- writing ---------------------------------------------------------------------------------------------


def _table_row(result: FactResult, max_documents: int) -> dict[str, Any]:
    import json

    record = result.to_dict(max_documents)
    evidence = record.pop("evidence")
    row = {key: value for key, value in record.items() if key not in ("hops", "candidate_logprobs")}
    row.update({f"evidence_{k}": v for k, v in evidence.items() if k not in ("documents", "forms")})
    row["evidence_documents"] = " ".join(map(str, evidence["documents"]))
    row["id"] = str(row["id"])
    row["hops"] = json.dumps(record["hops"], ensure_ascii=False)
    row["candidate_logprobs"] = json.dumps(record["candidate_logprobs"])
    return row


def write_facts(report: FactsReport, out: Any) -> dict[str, Any]:
    """``out/facts.parquet`` and ``.csv`` (one row per question and checkpoint; hops as JSON text),
    ``summary.json``, and the plots ``accuracy_by_exposures.png`` (with a run), ``accuracy_by_step.png``
    and ``accuracy_by_category.png``; each written under a temporary name, then renamed. Returns the
    summary."""
    from pathlib import Path

    from .._files import atomic_write_json, atomic_write_table
    from .fact_plots import plot_by_category, plot_by_exposures, plot_by_step

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QueryError(f"--out {out} is a file; give a folder for the facts table, summary and plots")
    out.mkdir(parents=True, exist_ok=True)
    rows = [_table_row(r, report.settings.max_documents) for items in report.results.values() for r in items]
    atomic_write_table(rows, out, "facts")
    summary = report.summary()
    atomic_write_json(out / "summary.json", summary)
    plots = [("accuracy_by_step.png", plot_by_step), ("accuracy_by_category.png", plot_by_category)]
    if any(row["by_exposures"] for row in summary["checkpoints"]):
        plots.append(("accuracy_by_exposures.png", plot_by_exposures))
    for name, plot in plots:
        tmp = out / f".{name}.tmp.png"
        plot(summary, tmp)
        tmp.replace(out / name)
    return summary
