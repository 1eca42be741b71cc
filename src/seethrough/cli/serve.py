"""`seethrough serve`: the local corpus explorer (FastAPI under uvicorn) over seethrough.serve."""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import ConfigError
from ..serve.limits import ServeLimits
from .shared import SHOWING, CorpusArg, DeviceOpt, JsonOpt, ThreadsOpt, app, config_option, console, emit, \
    refuse_together

LIMITS = "Limits"


def _limit(name: str) -> Any:
    return config_option(ServeLimits, name)


@app.command(rich_help_panel=SHOWING)
def serve(
    corpus: CorpusArg,
    run: Annotated[Optional[Path], typer.Option("--run", help="A run trained on CORPUS (or a model folder with its "
                                                              "tokenizer): adds membership and generate-and-trace.")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on; the default answers this machine only. "
                                                     "0.0.0.0 opens it to the network (no authentication).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free port, printed).")] = 8000,
    withhold: Annotated[Optional[Path], typer.Option("--withhold", help="Takedown list: document ids, one a line; "
                                                                        "those documents are never shown (counts say "
                                                                        "how many occurrences they hold).")] = None,
    max_body_bytes: Annotated[Optional[int], _limit("max_body_bytes")] = None,
    max_query_chars: Annotated[Optional[int], _limit("max_query_chars")] = None,
    max_query_tokens: Annotated[Optional[int], _limit("max_query_tokens")] = None,
    max_text_tokens: Annotated[Optional[int], _limit("max_text_tokens")] = None,
    deadline_seconds: Annotated[Optional[float], _limit("deadline_seconds")] = None,
    max_concurrent_queries: Annotated[Optional[int], _limit("max_concurrent_queries")] = None,
    max_queued_queries: Annotated[Optional[int], _limit("max_queued_queries")] = None,
    queue_wait_seconds: Annotated[Optional[float], _limit("queue_wait_seconds")] = None,
    max_boolean_terms: Annotated[Optional[int], _limit("max_boolean_terms")] = None,
    max_find_limit: Annotated[Optional[int], _limit("max_find_limit")] = None,
    max_find_offset: Annotated[Optional[int], _limit("max_find_offset")] = None,
    max_window: Annotated[Optional[int], _limit("max_window")] = None,
    max_context: Annotated[Optional[int], _limit("max_context")] = None,
    max_docs_per_span: Annotated[Optional[int], _limit("max_docs_per_span")] = None,
    max_new_tokens: Annotated[Optional[int], _limit("max_new_tokens")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A local web page and JSON API to search the corpus and trace texts (and, with --run, the model's)."""
    given = {"max_body_bytes": max_body_bytes, "max_query_chars": max_query_chars, "max_query_tokens": max_query_tokens,
             "max_text_tokens": max_text_tokens, "deadline_seconds": deadline_seconds,
             "max_concurrent_queries": max_concurrent_queries, "max_queued_queries": max_queued_queries,
             "queue_wait_seconds": queue_wait_seconds,
             "max_boolean_terms": max_boolean_terms, "max_find_limit": max_find_limit,
             "max_find_offset": max_find_offset, "max_window": max_window, "max_context": max_context,
             "max_docs_per_span": max_docs_per_span, "max_new_tokens": max_new_tokens}
    if run is None:
        refuse_together("no --run (no model is loaded)", {"--threads": threads, "--device": device,
                                                          "--max-new-tokens": max_new_tokens})
    limits = ServeLimits(**{k: v for k, v in given.items() if v is not None})
    listener = bind(host, port)  # before the corpus and model load: a taken port fails at once
    try:
        import uvicorn

        from ..serve import create_app

        served = create_app(corpus, run=run, withhold=withhold, limits=limits, host=host, device=device or "cpu",
                            threads=threads)
        explorer = served.state.explorer
        bound = listener.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}:{bound}/"
        facts = explorer.info()
        if as_json:
            emit({"url": url, "host": host, "port": bound, "corpus": facts["corpus"], "documents": facts["documents"],
                  "tokens": facts["tokens"], "run": facts["run"], "withheld_documents": facts["withheld_documents"]})
        else:
            extra = f"; run {run}" if run is not None else ""
            extra += f"; {facts['withheld_documents']} document(s) withheld" if withhold is not None else ""
            console.print(f"[green]serving[/] {corpus} ({facts['documents']:,} documents, {facts['tokens']:,} "
                          f"tokens{extra}) at [bold]{url}[/]  (Ctrl+C stops)")
            if host not in ("127.0.0.1", "localhost", "::1"):
                console.print(f"[yellow]warning:[/] listening on {host}: anyone who can reach this machine can "
                              "query the corpus (there is no authentication)")
        sys.stdout.flush()
        config = uvicorn.Config(served, log_level="warning", access_log=False, server_header=False, lifespan="off")
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        listener.close()


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a one-line error naming the problem."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: give a port from 0 to 65535 (0: any free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and without it a
    # keep-alive client waits ~40 ms on every response for the delayed ACK (measured: 47 ms against 2 ms)
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        listener.bind((host, port))
    except socket.gaierror:
        listener.close()
        raise ConfigError(f"--host {host!r} is not an address of this machine; use 127.0.0.1 (default) or 0.0.0.0") from None
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(f"--host {host} is not an address of this machine; use 127.0.0.1 (default) or "
                              "0.0.0.0") from None
        reason = "is in use; pick another with --port (0: any free port)" if error.errno == errno.EADDRINUSE else \
            f"cannot be opened: {error.strerror}"
        raise ConfigError(f"{host}:{port} {reason}") from None
    listener.listen(128)
    listener.set_inheritable(True)
    return listener
