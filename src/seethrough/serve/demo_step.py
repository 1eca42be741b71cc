"""What the demo prints about the explorer: how to start `seethrough serve` on the demo's corpus and
run, after checking that the explorer answers there (one count, one trace; no server is started)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any


def serve_command(corpus: str | Path, run: str | Path | None = None, port: int = 8000) -> str:
    """The command line that serves ``corpus`` (and ``run``), quoted for a POSIX shell."""
    words = ["seethrough", "serve", str(corpus)] + (["--run", str(run)] if run is not None else [])
    words += ["--port", str(port)] if port != 8000 else []
    return " ".join(shlex.quote(w) for w in words)


def demo_serve_lines(corpus: str | Path, run: str | Path | None = None, index: Any = None) -> list[str]:
    """The demo's lines about the explorer. Checks first that the explorer's answers work on this corpus
    (``index``: the demo's opened corpus, reused; else it is opened): a count of the first document's
    opening and a trace of it, through :class:`Explorer` without a model (well under a second)."""
    from ..index import open_corpus
    from .explorer import Explorer

    index = index if index is not None else open_corpus(corpus)
    explorer = Explorer(index)
    opening = index.document(0).token_ids[:8]
    counted = explorer.count(opening)
    traced = explorer.trace(index.tokenizer.decode(opening), {"min_length": 2, "span_density": 1.0}) \
        if index.tokenizer is not None else None
    checked = f"checked: the opening of document 0 occurs {counted['count']:,} time(s)"
    if traced is not None:
        checked += f", its trace lists {sum(len(s['documents']) for s in traced['spans'])} document(s)"
    return [f"explore the data in a browser: {serve_command(corpus, run)}",
            f"  then open http://127.0.0.1:8000/ (count, find, next tokens, search, documents, "
            f"was my text in the data?{', generate and trace' if run is not None else ''}); {checked}"]
