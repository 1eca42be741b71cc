"""Withheld documents (``seethrough serve --withhold FILE``): a takedown list the server honours.

The rule is "hide, but count": a withheld document's text, snippets, id and metadata never leave
the server, while counts stay the index's exact counts, each with a ``withheld`` field beside it
saying how many of those occurrences lie in withheld documents (so nothing is silently wrong). The
next-token distribution is the exception that proves the rule: its next tokens are counted over
the visible occurrences only, since a withheld document could otherwise be read back token by
token through the prompts it alone contains.

The withheld documents' tokens are held here in one array (each document followed by -1, which no
query id is, so no match crosses from one into the next) and searched directly: the cost of each
query's withheld count is linear in the withheld tokens, which a takedown list keeps small.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..index.engine import FindResult, check_deadline, ngram_starts


def read_withheld(path: str | Path, num_documents: int | None = None) -> list[int]:
    """Document ids from a file, one a line (blank lines and lines starting with # are skipped); a line
    that is not a document id (of a corpus of ``num_documents``) is refused, naming the line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ConfigError(f"--withhold {path} is not UTF-8 text (byte {error.start}); write one document id a line") from None
    except OSError as error:
        raise ConfigError(f"cannot read --withhold {path}: {error.strerror or error}") from None
    ids: list[int] = []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if not (text.isascii() and text.isdigit()):
            raise ConfigError(f"--withhold {path} line {number}: {text[:40]!r} is not a document id; write one "
                              "document number (0, 1, ...) a line")
        doc = int(text)
        if num_documents is not None and doc >= num_documents:
            raise ConfigError(f"--withhold {path} line {number}: document {doc} does not exist; the corpus has "
                              f"documents 0..{num_documents - 1}")
        ids.append(doc)
    return sorted(set(ids))


class WithheldDocuments:
    """The withheld documents of an indexed corpus, searched for the occurrences they hold."""

    def __init__(self, index: Any, ids: Iterable[int] = ()) -> None:
        corpus = index.corpus
        self.ids = sorted(set(int(d) for d in ids))
        for d in self.ids:
            corpus.shard_of_document(d)  # refuses an id outside the corpus
        self._set = frozenset(self.ids)
        parts, starts, at = [], [], 0
        for d in self.ids:
            tokens = np.asarray(corpus.document_tokens(d), dtype=np.int64)
            starts.append(at)
            parts += [tokens, np.array([-1], dtype=np.int64)]
            at += len(tokens) + 1
        self.tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        """Every withheld document's tokens, each followed by -1."""
        self.starts = np.array(starts, dtype=np.int64)
        """Where each withheld document (in ``ids`` order) begins in ``tokens``."""

    def __contains__(self, doc: object) -> bool:
        return doc in self._set

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def num_tokens(self) -> int:
        return len(self.tokens) - len(self.ids)

    def starts_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Positions in ``tokens`` where the n-gram ``ids`` (non-empty) starts, in order."""
        return ngram_starts(self.tokens, ids)

    def occurrences(self, ids: Sequence[int] | np.ndarray) -> int:
        """Occurrences of the n-gram in withheld documents (the empty n-gram: their tokens)."""
        return len(self.starts_of(ids)) if len(ids) else self.num_tokens

    def next_tokens(self, ids: Sequence[int] | np.ndarray) -> tuple[Counter, int, int]:
        """After each withheld occurrence of the prompt: (next token -> occurrences, occurrences that end
        a document, occurrences). The empty prompt: every withheld token, and no ends (as the engine)."""
        if not len(ids):
            tokens = self.tokens[self.tokens >= 0]
            return Counter(tokens.tolist()), 0, len(tokens)
        found = self.starts_of(ids)
        following = self.tokens[found + len(ids)]  # -1 (a document's end) at worst: never past the array
        ends = int((following < 0).sum())
        return Counter(following[following >= 0].tolist()), ends, len(found)

    def boolean_hits(self, clauses: list[list[np.ndarray]], window: int) -> int:
        """Occurrences of the first clause in withheld documents with every other clause starting within
        ``window`` tokens of it in the same document: the engine's ``search`` rule, on these documents."""
        hits = 0
        for d, start in zip(self.ids, self.starts.tolist()):
            check_deadline()
            end = start + int(np.argmax(self.tokens[start:] < 0))  # the -1 after document d
            doc = self.tokens[start:end]
            starts_by_clause = [np.unique(np.concatenate([ngram_starts(doc, term) for term in clause]))
                                for clause in clauses]
            anchors = starts_by_clause[0]
            lo, hi = np.maximum(anchors - window, 0), np.minimum(anchors + window, len(doc) - 1)
            keep = np.ones(len(anchors), dtype=bool)
            for other in starts_by_clause[1:]:
                keep &= np.searchsorted(other, lo, side="left") < np.searchsorted(other, hi, side="right")
            hits += int(keep.sum())
        return hits


class WithholdingIndex:
    """An indexed corpus as seen through a takedown list, for the audits that take an index (``trace``):
    ``find`` lists no occurrence in a withheld document (its count stays the index's); everything else
    is the index's own."""

    def __init__(self, index: Any, withheld: WithheldDocuments) -> None:
        self._index = index
        self._withheld = withheld

    def __getattr__(self, name: str) -> Any:
        return getattr(self._index, name)

    def find(self, query: Any, limit: int = 10, context: int = 20, offset: int = 0) -> FindResult:
        return self._index.find(query, limit, context, offset, exclude_documents=self._withheld.ids)
