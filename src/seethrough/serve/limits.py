"""The limits a server puts on every request: typed settings whose docstrings are the CLI's help."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 65_536
    """Largest request body (POST /api/trace, /api/membership, /api/generate) in bytes; larger ones get 413."""
    max_query_chars: int = 2_000
    """Longest query text (q=, ids=, and the text of a POST) in characters; longer ones get 422."""
    max_query_tokens: int = 500
    """Longest n-gram for count, find, ntd and search, in tokens; longer ones get 422."""
    max_text_tokens: int = 2_000
    """Longest text to trace or test for membership (and prompt to generate from), in tokens; 422 beyond."""
    deadline_seconds: float = 5.0
    """Each query's deadline, enforced inside the index engine (the work stops); past it the answer is 503."""
    max_concurrent_queries: int = 4
    """Queries answered at once; others wait in a queue (see --max-queued-queries)."""
    max_queued_queries: int = 64
    """Queries that may wait for a free slot; beyond that the answer is 503 at once."""
    queue_wait_seconds: float = 10.0
    """Longest wait in the queue for a free slot; past it the answer is 503 (the deadline starts after)."""
    max_boolean_terms: int = 16
    """Most n-grams in one boolean search (all clauses together)."""
    max_find_limit: int = 100
    """Most matches one page of find or search lists (limit=)."""
    max_find_offset: int = 100_000
    """Deepest offset= a find page may start at."""
    max_window: int = 10_000
    """Widest window= of a boolean search, in tokens either side of its first clause."""
    max_context: int = 100
    """Most tokens of context either side of a snippet (context=)."""
    max_docs_per_span: int = 20
    """Most documents a trace lists per span (docs_per_span)."""
    max_new_tokens: int = 256
    """Most tokens POST /api/generate may write (max_new_tokens)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            number = (int, float) if field.type == "float" else (int,)
            if isinstance(value, bool) or not isinstance(value, number) or not value > 0:
                flag = "--" + field.name.replace("_", "-")
                raise ConfigError(f"{flag} {value!r}: give a positive {'number' if number != (int,) else 'whole number'}")
