"""The texts a detector is tested on: human and machine sets, the held-out check, trimming, splits.

- Human text comes from a JSON-lines file (``text``; optional ``id``, the domain field, any other
  metadata) or from the documents of a corpus. Either way it must be *unseen*: with the training
  data's index, a text sharing a span of ``max_copied_span`` tokens or more with the training
  corpus is listed and left out (:func:`check_held_out`), so a false positive cannot come from
  memorisation.
- Machine text is given (``text``; optional ``id``, ``human_id``, ``decoding``, the domain field) or
  generated from the human texts' prefixes (``generation``).
- A human text and the machine texts made from it (or given with its ``human_id``) are trimmed to the
  same number of words, the fewest any of them has (Fast-DetectGPT trims each pair to the shorter;
  white space inside the kept words is kept as it was).
- Humans are split into a calibration and a test part, stratified by domain, by a seeded shuffle;
  a machine text goes with its human (so a shared prefix never crosses the split), and one without
  a human is a test text.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...errors import ConfigError, QueryError

HUMAN, MACHINE = "human", "machine"
CALIBRATION, TEST = "calibration", "test"
_RESERVED = ("id", "text", "human_id", "decoding", "label")


@dataclass(frozen=True)
class Text:
    """One text under test."""
    id: str
    label: str
    """``human`` or ``machine``."""
    text: str
    domain: str | None = None
    human_id: str | None = None
    """For machine text: the human text whose prefix it continues (or that it is paired with)."""
    decoding: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    split: str | None = None
    """``calibration`` or ``test``, once split."""

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"id": self.id, "label": self.label}
        for key in ("split", "decoding", "domain", "human_id"):
            if getattr(self, key) is not None:
                record[key] = getattr(self, key)
        return record


def read_texts(path: str | Path, label: str, flag: str, domain_field: str = "domain") -> list[Text]:
    """JSON lines, each an object with a string ``text``; ``id`` (string or integer; default the line
    number), ``domain_field``, and for machine text ``human_id`` and ``decoding``; other fields are
    kept as metadata."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise QueryError(f"{flag} {path} is not UTF-8 text (byte {error.start}); convert it to UTF-8") from None
    except OSError as error:
        raise QueryError(f"cannot read {flag} {path}: {error.strerror or error}") from None
    out: list[Text] = []
    ids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{flag} {path}:{number}"
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as error:
            reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
            raise QueryError(f"{where}: not valid JSON ({reason}); each line is an object with \"text\"") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise QueryError(f"{where}: each line must be a JSON object with a string \"text\"")
        raw_id = record.get("id", f"{label}-{number}")
        if isinstance(raw_id, bool) or not isinstance(raw_id, (str, int)):
            raise QueryError(f"{where}: \"id\" must be a string or an integer")
        text_id = str(raw_id)
        if text_id in ids:
            raise QueryError(f"{where}: id {text_id!r} is used twice; give every text its own id")
        ids.add(text_id)
        optional = {}
        for key in ("human_id", "decoding", domain_field):
            value = record.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                raise QueryError(f"{where}: {key!r} must be a string or an integer")
            optional[key] = None if value is None else str(value)
        if label == HUMAN and (optional["human_id"] is not None or optional["decoding"] is not None):
            raise QueryError(f"{where}: a human text has no \"human_id\" or \"decoding\"; those belong in --machine")
        metadata = {k: v for k, v in record.items() if k not in (*_RESERVED, domain_field)}
        out.append(Text(text_id, label, record["text"], optional[domain_field], optional["human_id"],
                        optional["decoding"], metadata))
    if not out:
        raise QueryError(f"{flag} {path} holds no texts; give one JSON object with \"text\" per line")
    return out


def corpus_texts(corpus: Any, domain_field: str = "domain") -> list[Text]:
    """Every document of a corpus (a ``TokenCorpus``) as a human text ``doc-N``, its metadata kept."""
    tok = corpus.require_tokenizer()
    out = []
    for i in range(corpus.num_documents):
        document = corpus.document(i)
        domain = document.metadata.get(domain_field)
        out.append(Text(f"doc-{i}", HUMAN, tok.decode(document.token_ids), None if domain is None else str(domain),
                        metadata={k: v for k, v in document.metadata.items() if k != domain_field}))
    if not out:
        raise QueryError(f"--corpus {corpus.path} holds no documents; give a corpus of human text")
    return out


@dataclass
class HeldOutCheck:
    """The index check of human texts: each text's longest span found verbatim in the training data."""
    max_copied_span: int
    longest: dict[str, int]
    refused: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"max_copied_span": self.max_copied_span, "checked": len(self.longest), "refused": self.refused}


def longest_spans(index: Any, rows: list[list[int]]) -> list[tuple[int, int]]:
    """(length, count in the corpus) of each row's longest span found verbatim in the indexed corpus."""
    out = []
    for lengths, counts in index.longest_matches_many(rows) if rows else []:
        if not lengths:
            out.append((0, 0))
            continue
        best = max(range(len(lengths)), key=lambda i: (lengths[i], -i))
        out.append((int(lengths[best]), int(counts[best])))
    return out


def check_held_out(index: Any, texts: list[Text], rows: list[list[int]], max_copied_span: int) -> HeldOutCheck:
    """Which human texts share a span of ``max_copied_span`` tokens or more with the training corpus
    (``rows``: their ids under the corpus tokenizer); those are refused."""
    found = longest_spans(index, rows)
    refused = [{"id": t.id, "longest_span": length, "count": count, "tokens": len(r)}
               for t, r, (length, count) in zip(texts, rows, found) if length >= max_copied_span]
    return HeldOutCheck(max_copied_span, {t.id: length for t, (length, _) in zip(texts, found)}, refused)


_WORD_END = re.compile(r"\S+")


def word_count(text: str) -> int:
    return len(_WORD_END.findall(text))


def trim_words(text: str, words: int) -> str:
    """The first ``words`` words of ``text``, with the white space between them as it was."""
    if words <= 0:
        return ""
    for i, match in enumerate(_WORD_END.finditer(text), start=1):
        if i == words:
            return text[:match.end()]
    return text.rstrip()


def trim_groups(humans: list[Text], machines: list[Text]) -> tuple[list[Text], list[Text]]:
    """Each human text and the machine texts paired with it, cut to the fewest words any of them has."""
    fewest: dict[str, int] = {h.id: word_count(h.text) for h in humans}
    for m in machines:
        if m.human_id in fewest:
            fewest[m.human_id] = min(fewest[m.human_id], word_count(m.text))
    paired = {m.human_id for m in machines}
    humans = [replace(h, text=trim_words(h.text, fewest[h.id])) if h.id in paired else h for h in humans]
    machines = [replace(m, text=trim_words(m.text, fewest[m.human_id])) if m.human_id in fewest else m
                for m in machines]
    return humans, machines


def split_texts(humans: list[Text], machines: list[Text], calibration_share: float,
                seed: int) -> tuple[list[Text], list[Text]]:
    """Humans into calibration and test (per domain, a seeded shuffle, round(share * n) calibrate);
    each machine text into its human's part, or test."""
    by_domain: dict[str | None, list[int]] = {}
    for i, h in enumerate(humans):
        by_domain.setdefault(h.domain, []).append(i)
    split: dict[int, str] = {}
    rng = random.Random(seed)
    for domain in sorted(by_domain, key=lambda d: (d is not None, d or "")):
        members = by_domain[domain][:]
        rng.shuffle(members)
        cut = round(calibration_share * len(members))
        for rank, i in enumerate(members):
            split[i] = CALIBRATION if rank < cut else TEST
    humans = [replace(h, split=split[i]) for i, h in enumerate(humans)]
    of_human = {h.id: h.split for h in humans}
    machines = [replace(m, split=of_human.get(m.human_id, TEST) if m.human_id else TEST) for m in machines]
    return humans, machines


def check_pairs(humans: list[Text], machines: list[Text], flag: str = "--machine") -> list[Text]:
    """Machine texts whose ``human_id`` names no human text are refused; a missing domain is taken
    from the human text."""
    by_id = {h.id: h for h in humans}
    unknown = [m for m in machines if m.human_id is not None and m.human_id not in by_id]
    if unknown:
        raise QueryError(f"{flag}: text {unknown[0].id!r} names human_id {unknown[0].human_id!r}, which is not among "
                         f"the human texts ({len(unknown)} such); fix the ids or leave human_id out")
    return [replace(m, domain=by_id[m.human_id].domain) if m.domain is None and m.human_id else m for m in machines]


def check_domains(humans: list[Text], machines: list[Text]) -> list[str]:
    """Refuse human and machine text of disjoint domains; notes on machine domains without humans."""
    human_domains = {h.domain for h in humans if h.domain is not None}
    machine_domains = {m.domain for m in machines if m.domain is not None}
    if not human_domains or not machine_domains:
        return []
    if not human_domains & machine_domains:
        raise ConfigError(f"no domain has both human and machine text (human: {', '.join(sorted(human_domains))}; "
                          f"machine: {', '.join(sorted(machine_domains))}); a detector's rates compare texts of one "
                          "domain: give human text of the machine text's domains")
    missing = sorted(machine_domains - human_domains)
    return [f"machine text of domain(s) {', '.join(missing)} has no human text of its domain; those rates rest on the "
            "other domains' humans"] if missing else []
