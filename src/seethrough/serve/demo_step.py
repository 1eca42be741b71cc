"""What the demo prints about the explorer: how to start `seethrough serve` on the demo's corpus and run."""

from __future__ import annotations

import shlex
from pathlib import Path


def serve_command(corpus: str | Path, run: str | Path | None = None, port: int = 8000) -> str:
    """The command line that serves ``corpus`` (and ``run``), quoted for a POSIX shell."""
    words = ["seethrough", "serve", str(corpus)] + (["--run", str(run)] if run is not None else [])
    words += ["--port", str(port)] if port != 8000 else []
    return " ".join(shlex.quote(w) for w in words)
