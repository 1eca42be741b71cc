"""A response cache keyed by content: weights hash, tokenizer hash, dtype and the exact token ids.

lm-eval's ``--use_cache`` keys responses by the request's text alone, so a cache filled by one model
answers for another. Here a key is the sha256 of everything the answer depends on; a different
model, tokenizer, dtype, truncation length or token sequence is a different key. Stored in one SQLite
file (stdlib), safe to share between runs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from .._files import sha256_json


class ResponseCache:
    def __init__(self, folder: str | Path, model_identity: dict[str, Any]):
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.identity = model_identity
        self.db = sqlite3.connect(folder / "responses.sqlite")
        self.db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self.hits = 0
        self.misses = 0

    def key(self, kind: str, **request: Any) -> str:
        return sha256_json({"model": self.identity, "kind": kind, **request})

    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return json.loads(row[0])

    def put_many(self, items: list[tuple[str, Any]]) -> None:
        with self.db:  # one transaction: a crash leaves the cache as it was
            self.db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in items])
