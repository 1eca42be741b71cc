"""The probe data file: statements or contrast pairs, one JSON object a line, and the split into
the items a probe is fitted on and the items it is tested on.

- a statement: ``{"text": "...", "label": 0|1, "group"?: "..."}``: the hidden state of the text is
  the probe's input, ``label`` 1 when the statement is true;
- a contrast pair: ``{"question": "...", "choices": [A, B], "label": 0|1, "group"?: "..."}``: each
  choice is appended to the question (after ``delimiter``, a space by default), the two texts are
  the two sides of one item, and ``label`` is the index of the right choice. The pair is the unit:
  both sides go to the same split.

Other fields are kept as the item's metadata. A file holds one kind only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..._files import read_json_lines
from ...errors import QueryError

STATEMENTS, PAIRS = "statements", "pairs"


@dataclass(frozen=True)
class ProbeItem:
    """One statement (``choices`` None) or one contrast pair."""
    label: int
    """1: the statement is true / the second choice is the right one; 0: false / the first choice."""
    text: str | None = None
    question: str | None = None
    choices: tuple[str, str] | None = None
    group: str | None = None
    line: int = 0
    """The item's line in its file (1-based; 0 for items made in memory)."""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    def sides(self, delimiter: str = " ") -> tuple[str, ...]:
        """The texts whose last-token hidden states are read: the statement, or the question with each choice."""
        if self.choices is None:
            return (self.text or "",)
        return tuple(f"{self.question}{delimiter}{choice}" for choice in self.choices)


@dataclass
class ProbeData:
    kind: str
    """``statements`` or ``pairs``."""
    items: list[ProbeItem]
    source: str = ""

    @property
    def sides(self) -> int:
        return 2 if self.kind == PAIRS else 1

    @property
    def labels(self) -> np.ndarray:
        return np.array([item.label for item in self.items], dtype=np.int64)

    @property
    def groups(self) -> list[str | None]:
        return [item.group for item in self.items]


def parse_probe_records(records: list[Any], source: str = "the data", lines: list[int] | None = None) -> ProbeData:
    """Probe items from decoded JSON records (``source`` names them in errors, with ``lines``, each
    record's line number, default 1, 2, ...): statements or pairs, each with a 0/1 label; refuses a mix
    of kinds, a pair with other than two choices, and labels that are all one class."""
    items: list[ProbeItem] = []
    kind = None
    for number, record in zip(lines or range(1, len(records) + 1), records):
        where = f"{source}:{number}"
        if not isinstance(record, dict):
            raise QueryError(f"{where}: each line must be a JSON object, {{\"text\", \"label\"}} or {{\"question\", "
                             "\"choices\", \"label\"}")
        this = PAIRS if "choices" in record or "question" in record else STATEMENTS
        if kind is not None and this != kind:
            raise QueryError(f"{where}: a {this[:-1]} among {kind}; a data file holds statements or contrast pairs, "
                             "not both")
        kind = this
        label = record.get("label")
        if isinstance(label, bool) or label not in (0, 1):
            raise QueryError(f"{where}: \"label\" must be 0 or 1 (got {label!r})")
        group = record.get("group")
        if group is not None and not isinstance(group, str):
            raise QueryError(f"{where}: \"group\" must be a string (got {group!r})")
        known = {"text", "question", "choices", "label", "group"}
        metadata = {k: v for k, v in record.items() if k not in known}
        if this == STATEMENTS:
            text = record.get("text")
            if not isinstance(text, str) or not text.strip():
                raise QueryError(f"{where}: a statement needs a non-empty \"text\" string")
            items.append(ProbeItem(int(label), text=text, group=group, line=number, metadata=metadata))
            continue
        question, choices = record.get("question"), record.get("choices")
        if not isinstance(question, str):
            raise QueryError(f"{where}: a contrast pair needs a \"question\" string")
        if not isinstance(choices, list) or len(choices) != 2:
            count = len(choices) if isinstance(choices, list) else "no list of"
            raise QueryError(f"{where}: a contrast pair has exactly two choices, this one {count} choices; write "
                             "\"choices\": [A, B]")
        if not all(isinstance(c, str) and c.strip() for c in choices):
            raise QueryError(f"{where}: both choices must be non-empty strings")
        if choices[0] == choices[1]:
            raise QueryError(f"{where}: the two choices are the same text, so the pair contrasts nothing")
        items.append(ProbeItem(int(label), question=question, choices=(choices[0], choices[1]), group=group,
                               line=number, metadata=metadata))
    if not items:
        raise QueryError(f"{source} holds no items; write one JSON object a line")
    data = ProbeData(kind or STATEMENTS, items, source)
    check_both_labels(data.labels, f"{source}'s items")
    return data


def read_probe_data(path: str | Path) -> ProbeData:
    """The ``--data`` file: JSON lines of statements or contrast pairs (blank lines skipped)."""
    records, lines = read_json_lines(path, "--data")
    return parse_probe_records(records, str(path), lines)


def check_both_labels(labels: np.ndarray, what: str) -> None:
    values = set(np.asarray(labels).tolist())
    if not values:
        raise QueryError(f"{what} holds no items; a probe needs items of both labels (0 and 1)")
    if len(values) < 2:
        raise QueryError(f"the labels of {what} are all {values.pop()}; a probe needs items of both labels (0 and 1)")


def split_items(data: ProbeData, train_group: str | None = None, test_group: str | None = None,
                test_share: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indexes of the items to fit on and to test on.

    - no group: a random split of all items, ``test_share`` of each label held out;
    - ``train_group`` G only, or G == ``test_group``: the same split within G;
    - ``test_group`` H only: fit on every item outside H, test on H;
    - both, different: fit on all of G, test on all of H (transfer).
    """
    groups = data.groups
    present = sorted({g for g in groups if g is not None})
    for flag, group in (("--train-group", train_group), ("--test-group", test_group)):
        if group is not None and group not in present:
            listed = ", ".join(present) if present else "none (no item has a \"group\")"
            raise QueryError(f"{flag} {group!r}: no item has that group; the groups in {data.source or 'the data'} "
                             f"are {listed}")
    every = np.arange(len(data.items))
    in_group = {g: np.array([i for i in every if groups[i] == g], dtype=np.int64) for g in present}
    if train_group is not None and test_group is not None and train_group != test_group:
        train, test = in_group[train_group], in_group[test_group]
    elif test_group is not None and train_group is None:
        test = in_group[test_group]
        train = np.array([i for i in every if groups[i] != test_group], dtype=np.int64)
        if len(train) == 0:
            raise QueryError(f"--test-group {test_group!r} holds every item, so none is left to fit on; name a "
                             "--train-group too")
    else:
        pool = in_group[train_group] if train_group is not None else every
        train, test = _stratified_split(data.labels, pool, test_share, seed)
    labels = data.labels
    check_both_labels(labels[train], "the items fitted on")
    check_both_labels(labels[test], "the items tested on")
    return np.sort(train), np.sort(test)


def _stratified_split(labels: np.ndarray, pool: np.ndarray, test_share: float,
                      seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    train, test = [], []
    for value in (0, 1):
        members = pool[labels[pool] == value]
        members = members[rng.permutation(len(members))]
        held = int(round(test_share * len(members)))
        if len(members) >= 2:
            held = min(max(held, 1), len(members) - 1)  # both labels on both sides whenever there are two
        test.extend(members[:held].tolist())
        train.extend(members[held:].tolist())
    return np.array(train, dtype=np.int64), np.array(test, dtype=np.int64)
