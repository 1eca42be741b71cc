"""The FastAPI app of `seethrough serve`: the JSON API over :class:`Explorer` and the static page.

Safe by default, each guard for a measured reason (docs/serve.md):

- read-only: GET for the index queries, POST only for texts to trace, test or continue; POST bodies
  must be ``application/json`` (so a cross-site form cannot send one without a preflight, which fails:
  there is no CORS) and are capped (413 before the body is read, chunked bodies counted too);
- a ``Host`` header that is not the bound host, ``localhost`` or ``127.0.0.1`` is refused (400): a
  DNS-rebinding page cannot reach the server through a name of its own;
- each query runs under a deadline enforced inside the engine (503, and the work stops there; a
  timeout around a thread would answer while the thread runs on);
- at most ``max_concurrent_queries`` run at once and ``max_queued_queries`` wait (each at most
  ``queue_wait_seconds``); past that the answer is 503 at once, so a burst cannot pile up work;
- every error is JSON ``{"error": one line, "status": code}``, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from .._files import finite_json
from ..errors import QueryError, SeethroughError
from ..index.engine import QueryTimeout, query_deadline
from .explorer import DocumentWithheld, Explorer, NoSuchDocument, NotServed
from .limits import ServeLimits
from .withhold import read_withheld

STATIC = Path(__file__).parent / "static"
LOG = logging.getLogger("seethrough.serve")

PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""The page loads its own script and style and talks to its own API; nothing else (no CDN, no inline code)."""


class Busy(SeethroughError):
    """Every query slot is taken and the queue is full, or the wait ran past the deadline (HTTP 503)."""


def status_of(error: Exception) -> int:
    """The HTTP status of a library error."""
    for kind, status in ((QueryTimeout, 503), (Busy, 503), (DocumentWithheld, 410), (NoSuchDocument, 404),
                         (NotServed, 404), (QueryError, 422)):
        if isinstance(error, kind):
            return status
    return 500


class JSONAnswer(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(finite_json(content), ensure_ascii=False, allow_nan=False).encode("utf-8")


def error_answer(status: int, message: str) -> JSONAnswer:
    return JSONAnswer({"error": message, "status": status}, status_code=status)


# ---- request bodies ----------------------------------------------------------------------------------
class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a field the server would ignore is refused


class _TracedBody(_Body):
    """The trace settings a body may set (``TraceSettings``' fields); those left out keep their defaults."""
    min_length: StrictInt | None = None
    span_density: StrictFloat | StrictInt | None = None
    docs_per_span: StrictInt | None = None
    context: StrictInt | None = None
    novelty_max_n: StrictInt | None = None
    max_count: StrictInt | None = None


class TraceBody(_TracedBody):
    text: StrictStr


class MembershipBody(_Body):
    text: StrictStr


class GenerateBody(_TracedBody):
    prompt: StrictStr
    max_new_tokens: StrictInt = 64


def _settings(body: _TracedBody) -> Any:
    from ..audit.trace import TraceSettings

    given = {name: getattr(body, name) for name in _TracedBody.model_fields if getattr(body, name) is not None}
    if "span_density" in given:
        given["span_density"] = float(given["span_density"])
    return TraceSettings(**given)


def _one_line(error: ValidationError | RequestValidationError) -> str:
    """The first problem of a validation error, as ``field: message``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path"))
    message = first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden":
        message = "not a field of this request; leave it out"
    return f"{where}: {message}" if where else message


ENDPOINTS = ("GET /api/info", "GET /api/count", "GET /api/find", "GET /api/ntd", "GET /api/search",
             "GET /api/document/N", "POST /api/trace", "POST /api/membership", "POST /api/generate")


def _http_message(request: Request, error: StarletteHTTPException) -> str:
    """Starlette's own errors (no route, wrong method) as a line that says what to ask for instead."""
    path = request.url.path[:80]
    if error.status_code == 404 and error.detail == "Not Found":
        return f"{path} is not a page of this server; the API is {', '.join(ENDPOINTS)} (docs/serve.md)"
    if error.status_code == 405:
        allowed = (error.headers or {}).get("Allow", "another method")
        return f"{request.method} {path} is not answered; use {allowed} (docs/serve.md)"
    return str(error.detail)


# ---- middleware ----------------------------------------------------------------------------------------
def allowed_hosts_for(host: str) -> set[str]:
    """Host names a request may carry: localhost, 127.0.0.1, the bound host, and on an all-interfaces
    bind (0.0.0.0 or ::) this machine's own names and addresses."""
    allowed = {"localhost", "127.0.0.1", host.lower().strip("[]")}
    if host in ("0.0.0.0", "::", ""):
        name = socket.gethostname()
        allowed |= {name.lower(), socket.getfqdn().lower()}
        try:
            allowed |= {info[4][0].lower() for info in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    if host in ("::1", "::"):
        allowed.add("::1")
    return allowed


def _host_name(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:8000`` -> ``::1``), lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


DRAIN_BYTES = 1 << 20
"""An oversized body up to this size is read (and dropped) before the 413, so that a client still
sending it reads the answer instead of a connection reset (httpx did, measured); a larger one, or
a Content-Length saying so, is answered at once."""


class Guard:
    """ASGI middleware: the Host check, the body cap (counted as it arrives) and the page's security headers."""

    def __init__(self, app: Any, allowed_hosts: set[str], max_body_bytes: int) -> None:
        self.app, self.allowed, self.max_body = app, allowed_hosts, max_body_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if _host_name(host) not in self.allowed:
            shown = host[:60] if host else "(none)"
            return await error_answer(400, f"Host header {shown!r} is not this server's; open the page at the "
                                           "address the server printed (127.0.0.1 or localhost)")(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            return await error_answer(400, f"Content-Length {length[:20]!r} is not a number of bytes")(scope, receive,
                                                                                                      send)
        if length is not None and int(length) > DRAIN_BYTES:
            return await self._too_large(scope, receive, send)
        if scope["method"] in ("POST", "PUT", "PATCH"):  # read the body here, counting chunked bodies too
            chunks, size = [], 0
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                size += len(message.get("body", b""))
                if size <= self.max_body:
                    chunks.append(message.get("body", b""))
                elif size > DRAIN_BYTES:  # too much to read through: answer now (the client may see a reset)
                    return await self._too_large(scope, receive, send)
                if not message.get("more_body", False):
                    break
            if size > self.max_body:  # read to its end, so the client sees the 413 and not a reset connection
                return await self._too_large(scope, receive, send)
            body, replayed = b"".join(chunks), False

            async def receive() -> dict:  # noqa: F811 - the inner app reads the body already read
                nonlocal replayed
                if replayed:
                    return {"type": "http.disconnect"}
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                         (b"cache-control", b"no-store"), (b"content-security-policy", PAGE_POLICY.encode())]
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _too_large(self, scope: dict, receive: Callable, send: Callable) -> None:
        await error_answer(413, f"the request body is over this server's limit of {self.max_body:,} bytes; send a "
                                "shorter text")(scope, receive, send)


class Admission:
    """At most ``running`` queries at once; up to ``queued`` more wait, each at most ``wait`` seconds."""

    def __init__(self, running: int, queued: int, wait: float) -> None:
        self.capacity, self.queued_limit, self.wait = running, queued, wait
        self.running = 0
        self.waiting = 0
        self._free: asyncio.Condition | None = None

    async def __aenter__(self) -> None:
        if self._free is None:
            self._free = asyncio.Condition()
        async with self._free:
            if self.running >= self.capacity:
                if self.waiting >= self.queued_limit:
                    raise Busy(f"the server is busy ({self.running} queries running, {self.waiting} waiting); "
                               "try again shortly")
                self.waiting += 1
                try:
                    await asyncio.wait_for(self._free.wait_for(lambda: self.running < self.capacity), self.wait)
                except TimeoutError:
                    raise Busy(f"the server is busy: no query slot came free within {self.wait:g} s; try again "
                               "shortly") from None
                finally:
                    self.waiting -= 1
            self.running += 1

    async def __aexit__(self, *_: Any) -> None:
        assert self._free is not None
        async with self._free:
            self.running -= 1
            self._free.notify()


# ---- the app -------------------------------------------------------------------------------------------
_IDS = re.compile(r"^\s*\d+(?:\s*,\s*\d+|\s+\d+)*\s*$")
"""Token ids separated by one comma or by spaces: ``1,2,3`` or ``1 2 3``; an empty item (``1,,2``) is refused."""


def parse_query(q: str | None, ids: str | None, limits: ServeLimits, allow_empty: bool = False) -> str | list[int]:
    """The query of a GET: ``q`` (text) or ``ids`` ("1,2,3" or "1 2 3"), exactly one."""
    if q is not None and ids is not None:
        raise QueryError("give the query as q (text) or ids (token ids), not both")
    if ids is not None:
        if len(ids) > limits.max_query_chars:
            raise QueryError(f"ids has {len(ids)} characters, over this server's limit of {limits.max_query_chars}")
        if not _IDS.match(ids):
            raise QueryError(f"ids={ids[:40]!r} is not a list of token ids (whole numbers, one comma between "
                             "each); write it like ids=1,2,3")
        return [int(part) for part in re.split(r"\s*,\s*|\s+", ids.strip())]
    if not q and not allow_empty:
        raise QueryError("give the query as q=TEXT or ids=1,2,3" if q is None else
                         "q is empty: give some text (q=TEXT) or token ids (ids=1,2,3)")
    return q or ""


def create_app(corpus_path: str | Path, run: str | Path | None = None,
               withhold: str | Path | list[int] | None = None, limits: ServeLimits = ServeLimits(), *,
               host: str = "127.0.0.1", device: str = "cpu", threads: int | None = None) -> FastAPI:
    """The explorer's app over an indexed corpus; with ``run``, membership and generation (its last
    checkpoint, checked against the corpus, loaded now). ``withhold``: a takedown file (document ids,
    one a line) or the ids. ``host``: the address served, whose name requests may carry."""
    from ..index import open_corpus

    index = open_corpus(corpus_path)
    index.shard_indexes  # noqa: B018 - a missing index is refused now, not at the first query
    if withhold is None:
        withheld: list[int] = []
    elif isinstance(withhold, (str, Path)):
        withheld = read_withheld(withhold, index.num_documents)
    else:
        withheld = list(withhold)
    explorer = Explorer(index, run, withheld, limits, device=device, threads=threads)
    explorer.warm_up()
    if run is not None:
        explorer.load_model()  # at start, not inside the first query's deadline
    return build_app(explorer, allowed_hosts_for(host))


def build_app(explorer: Explorer, allowed_hosts: set[str]) -> FastAPI:
    """The app over an :class:`Explorer` already made (tests and embedding)."""
    limits = explorer.limits
    app = FastAPI(title="seethrough explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.explorer = explorer
    admission = Admission(limits.max_concurrent_queries, limits.max_queued_queries, limits.queue_wait_seconds)
    app.state.admission = admission

    def timed(work: Callable[[], Any]) -> tuple[Any, float]:
        started = time.perf_counter()
        with query_deadline(limits.deadline_seconds):
            result = work()
        return result, (time.perf_counter() - started) * 1000

    async def answer(work: Callable[[], Any]) -> JSONAnswer:
        async with admission:
            result, ms = await run_in_threadpool(timed, work)
        return JSONAnswer(result, headers={"x-query-ms": f"{ms:.3f}"})

    async def json_body(request: Request, model: type[BaseModel]) -> Any:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise StarletteHTTPException(415, f"send the body as application/json (got {kind or 'no content type'})")
        try:
            data = json.loads(await request.body())
        except (ValueError, RecursionError):
            raise QueryError("the body is not valid JSON; send an object like {\"text\": \"...\"}") from None
        if not isinstance(data, dict):
            raise QueryError("the body must be a JSON object like {\"text\": \"...\"}")
        try:
            return model.model_validate(data)
        except ValidationError as error:
            raise QueryError(_one_line(error)) from None

    @app.exception_handler(SeethroughError)
    async def library_error(_: Request, error: SeethroughError) -> JSONAnswer:
        return error_answer(status_of(error), str(error).splitlines()[0] if str(error) else type(error).__name__)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONAnswer:
        return error_answer(422, _one_line(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONAnswer:
        return error_answer(error.status_code, _http_message(request, error))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONAnswer:
        LOG.exception("unexpected error")  # the traceback goes to the server's log, never to the client
        return error_answer(500, f"internal error ({type(error).__name__}); see the server's log")

    # ---- the page ------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC, follow_symlink=False), name="static")

    # ---- the API -------------------------------------------------------------------------------------
    @app.get("/api/info")
    async def info() -> JSONAnswer:
        return JSONAnswer(explorer.info())

    @app.get("/api/count")
    async def count(q: str | None = None, ids: str | None = None) -> JSONAnswer:
        query = parse_query(q, ids, limits)
        return await answer(lambda: explorer.count(query))

    @app.get("/api/find")
    async def find(q: str | None = None, ids: str | None = None, limit: int = 10, offset: int = 0,
                   context: int = 20) -> JSONAnswer:
        query = parse_query(q, ids, limits)
        return await answer(lambda: explorer.find(query, offset=offset, limit=limit, context=context))

    @app.get("/api/ntd")
    async def ntd(q: str | None = None, ids: str | None = None) -> JSONAnswer:
        query = parse_query(q, ids, limits, allow_empty=True)
        return await answer(lambda: explorer.ntd(query))

    @app.get("/api/search")
    async def search(q: str | None = None, ids: str | None = None, window: int = 100, limit: int = 10,
                     context: int = 20) -> JSONAnswer:
        query = parse_query(q, ids, limits)
        return await answer(lambda: explorer.search(query, window=window, limit=limit, context=context))

    @app.get("/api/document/{doc}")
    async def document(doc: str) -> JSONAnswer:
        if not (doc.isascii() and doc.isdigit()):
            raise QueryError(f"document id {doc[:40]!r} is not a document number; ask for /api/document/0, 1, ... "
                             f"up to {explorer.index.num_documents - 1}")
        return await answer(lambda: explorer.document(int(doc)))

    @app.post("/api/trace")
    async def trace(request: Request) -> JSONAnswer:
        body = await json_body(request, TraceBody)
        return await answer(lambda: explorer.trace(body.text, _settings(body)))

    @app.post("/api/membership")
    async def membership(request: Request) -> JSONAnswer:
        body = await json_body(request, MembershipBody)
        return await answer(lambda: explorer.membership(body.text))

    @app.post("/api/generate")
    async def generate(request: Request) -> JSONAnswer:
        body = await json_body(request, GenerateBody)
        return await answer(lambda: explorer.generate(body.prompt, body.max_new_tokens, _settings(body)))

    app.add_middleware(Guard, allowed_hosts=allowed_hosts, max_body_bytes=limits.max_body_bytes)
    return app
