"""`seethrough serve`: a local explorer of a corpus (and a run) in the browser, over a JSON API.

Public API:

- :func:`create_app` ``(corpus_path, run=None, withhold=None, limits=ServeLimits())`` -> a FastAPI app:
  the JSON API (docs/serve.md) and the static page (``static/``: one HTML file, its script and style;
  no CDN, no build step); run it with any ASGI server (``seethrough serve`` uses uvicorn).
- :class:`ServeLimits`: body and query caps, the per-query deadline, concurrent and queued queries.
- :class:`Explorer`: the same answers as plain dicts, without HTTP (what each endpoint calls).
- :func:`read_withheld`: a takedown file (document ids, one a line), checked line by line.

Layer 5: it composes the index, the model layer and the trace and membership audits. FastAPI loads
on first use of the app, so the CLI can read :class:`ServeLimits` for its help without it.
"""

from typing import TYPE_CHECKING, Any

from .limits import ServeLimits

if TYPE_CHECKING:
    from .app import create_app
    from .explorer import DocumentWithheld, Explorer, NoSuchDocument, NotServed
    from .withhold import read_withheld

_LAZY = {"create_app": "app", "Explorer": "explorer", "DocumentWithheld": "explorer", "NoSuchDocument": "explorer",
         "NotServed": "explorer", "read_withheld": "withhold"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'seethrough.serve' has no attribute {name!r}")


__all__ = ["DocumentWithheld", "Explorer", "NoSuchDocument", "NotServed", "ServeLimits", "create_app",
           "read_withheld"]
