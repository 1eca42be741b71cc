"""The questions file of ``seethrough facts``: JSON lines, one question each, read and checked.

    {"id": "q1", "subject": "Bazomi", "prompt": "Bazomi was born in", "answer": "Marosa",
     "candidates": ["Marosa", "Tuvela", ...], "relation": "birth_city", "format": "direct",
     "hops": [{"subject": "Bazomi", "answer": "Fenocorp"}, {"subject": "Fenocorp", "answer": "Tuvela"}],
     "group": "B"}

``id``, ``subject``, ``prompt``, ``answer`` and ``candidates`` are required; ``relation``, ``format``
(``direct``, the default, or ``chain``), ``hops`` and ``group`` are optional. ``candidates`` is the
answer set the model ranks (every entity of the answer's type, the answer among them). ``hops`` is the
chain of facts that would derive the answer: the first hop starts at the subject, each hop starts
where the one before ended, and the last ends at the answer. Anything else on a line is refused (a
misspelt optional field would otherwise be ignored); so are duplicate ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import QueryError

REQUIRED = ("id", "subject", "prompt", "answer", "candidates")
OPTIONAL = ("relation", "format", "hops", "group")
FORMATS = ("direct", "chain")


@dataclass(frozen=True)
class Hop:
    """One fact of a derivation: ``subject`` -> ``answer``."""
    subject: str
    answer: str


@dataclass
class FactQuestion:
    id: str | int
    subject: str
    prompt: str
    answer: str
    candidates: list[str]
    relation: str | None = None
    format: str = "direct"
    hops: list[Hop] = field(default_factory=list)
    group: str | None = None
    where: str = "question"
    """``FILE:LINE`` of the question, for messages."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "subject": self.subject, "prompt": self.prompt, "answer": self.answer,
                "candidates": list(self.candidates), "relation": self.relation, "format": self.format,
                "hops": [{"subject": h.subject, "answer": h.answer} for h in self.hops], "group": self.group}


def _text(record: dict[str, Any], name: str, where: str, optional: bool = False) -> str | None:
    value = record.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise QueryError(f"{where}: {name} must be a non-empty string, not {json.dumps(value)}")
    return value


def parse_question(record: Any, where: str) -> FactQuestion:
    """One question from its JSON value; ``where`` (``FILE:LINE``) starts every message."""
    if not isinstance(record, dict):
        raise QueryError(f"{where}: each line must be a JSON object with {', '.join(REQUIRED)}")
    unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise QueryError(f"{where}: unknown field {', '.join(map(repr, unknown))}; a question has "
                         f"{', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}")
    missing = [name for name in REQUIRED if name not in record]
    if "candidates" in missing or record.get("candidates") in ([], None):
        raise QueryError(f"{where}: no candidates; give the answer set the model ranks (every entity of the "
                         "answer's type, the answer among them)")
    if missing:
        raise QueryError(f"{where}: missing {', '.join(missing)}; every question needs {', '.join(REQUIRED)}")
    ident = record["id"]
    if isinstance(ident, bool) or not isinstance(ident, (str, int)) or (isinstance(ident, str) and not ident.strip()):
        raise QueryError(f"{where}: id must be a non-empty string or an integer, not {json.dumps(ident)}")
    subject, prompt, answer = (_text(record, name, where) for name in ("subject", "prompt", "answer"))
    candidates = record["candidates"]
    if not isinstance(candidates, list) or not all(isinstance(c, str) and c.strip() for c in candidates):
        raise QueryError(f"{where}: candidates must be a list of non-empty strings")
    repeated = sorted({c for c in candidates if candidates.count(c) > 1})
    if repeated:
        raise QueryError(f"{where}: candidate {repeated[0]!r} is listed more than once; list each once")
    if answer not in candidates:
        raise QueryError(f"{where}: the answer {answer!r} is not among its candidates; add it to candidates")
    form = record.get("format", "direct")
    if form not in FORMATS:
        raise QueryError(f"{where}: format {json.dumps(form)} is not one of {', '.join(FORMATS)}")
    hops = _hops(record.get("hops"), where, subject, answer)  # type: ignore[arg-type]
    relation, group = _text(record, "relation", where, True), _text(record, "group", where, True)
    return FactQuestion(ident, subject, prompt, answer, list(candidates), relation, form, hops, group,  # type: ignore[arg-type]
                        where)


def _hops(value: Any, where: str, subject: str, answer: str) -> list[Hop]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(h, dict) for h in value):
        raise QueryError(f"{where}: hops must be a list of objects {{\"subject\", \"answer\"}}")
    hops = []
    for number, hop in enumerate(value, start=1):
        extra = sorted(set(hop) - {"subject", "answer"})
        if extra:
            raise QueryError(f"{where}: hop {number} has unknown field {', '.join(map(repr, extra))}; a hop has "
                             "subject and answer")
        hops.append(Hop(_text(hop, "subject", f"{where}: hop {number}"),  # type: ignore[arg-type]
                        _text(hop, "answer", f"{where}: hop {number}")))  # type: ignore[arg-type]
    if hops:
        if hops[0].subject != subject:
            raise QueryError(f"{where}: hop 1 starts at {hops[0].subject!r}, not at the subject {subject!r}; the "
                             "hops are the chain from the subject to the answer")
        for number, (before, after) in enumerate(zip(hops, hops[1:]), start=2):
            if after.subject != before.answer:
                raise QueryError(f"{where}: hop {number} starts at {after.subject!r}, not where hop {number - 1} "
                                 f"ends ({before.answer!r}); each hop starts at the answer of the one before")
        if hops[-1].answer != answer:
            raise QueryError(f"{where}: the last hop ends at {hops[-1].answer!r}, not at the answer {answer!r}; "
                             "the hops are the chain from the subject to the answer")
    return hops


def _checked(located: list[tuple[Any, str]], empty: str) -> list[FactQuestion]:
    """Each ``(record, where)`` parsed; an id used twice is refused, naming both lines."""
    questions: list[FactQuestion] = []
    seen: dict[str, str] = {}
    for record, where in located:
        question = parse_question(record, where)
        key = str(question.id)  # 1 and "1" print alike, so they are one id
        if key in seen:
            raise QueryError(f"{where}: id {question.id!r} is already used on {seen[key]}; give every question "
                             "its own id")
        seen[key] = where
        questions.append(question)
    if not questions:
        raise QueryError(f"{empty} holds no questions; write one JSON object per line")
    return questions


def parse_questions(records: list[Any], source: str = "questions") -> list[FactQuestion]:
    """Questions from JSON values (``source:N`` names the N-th, from 1); duplicate ids are refused."""
    return _checked([(record, f"{source}:{n}") for n, record in enumerate(records, start=1)], source)


def read_questions(path: str | Path) -> list[FactQuestion]:
    """The questions of a JSON-lines file (blank lines skipped), each checked; every message names its line."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise QueryError(f"cannot read --questions {path}: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise QueryError(f"{path}:{line}: not UTF-8 text; convert the file to UTF-8") from None
    located = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            located.append((json.loads(line), f"{path}:{number}"))
        except (ValueError, RecursionError) as error:
            reason = "nested too deep" if isinstance(error, RecursionError) else str(error)
            raise QueryError(f"{path}:{number}: not valid JSON ({reason}); write one question object per "
                             "line") from None
    return _checked(located, f"--questions {path}")
