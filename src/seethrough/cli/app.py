"""The ``seethrough`` command line: this entry module imports every command module (each registers
its commands on the shared ``app``) and runs it. ``python -m seethrough.cli.app`` and
``python -m seethrough`` work the same. Library errors become one line on stderr and exit code 2."""

from __future__ import annotations

import sys

from ..errors import SeethroughError
# each module registers its commands on the shared app; the help shows their panels in this order
from . import data  # noqa: F401,I001
from . import training  # noqa: F401
from . import audits  # noqa: F401
from . import detect  # noqa: F401
from . import beliefs  # noqa: F401
from . import bias  # noqa: F401
from . import evaluation  # noqa: F401
from . import serve  # noqa: F401
from . import show  # noqa: F401
from . import control  # noqa: F401
from . import demo  # noqa: F401
from .shared import app, err, escape


def main() -> None:
    """The process entry (the ``seethrough`` script, ``python -m seethrough``): runs the command, then ends
    the process with its exit status. Never call it from library code or tests: it does not return."""
    try:
        app()
        code: int | str | None = 0
    except SystemExit as done:  # typer ends every command this way, 0 included
        code = done.code
    except SeethroughError as error:
        err.print(f"[red]error:[/] {escape(str(error))}")
        code = 2
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]")
        code = 130
    exit_without_teardown(code)


def exit_without_teardown(code: int | str | None) -> None:
    """End the process as ``sys.exit(code)`` would, without the interpreter's teardown.

    The teardown frees every object and module one by one, and after an evaluation (torch, transformers,
    lm-eval and datasets imported: millions of objects) that took 1.1-1.5 s of a 9 s ``seethrough eval
    --limit 1`` on 2 cores, after its last output line. Nothing a command leaves depends on it: every
    file a command writes is written and closed before the command returns (atomically, see
    ``seethrough._files``), and what does matter at exit still runs, in the order Python runs it: the
    threads that are not daemons are joined, the ``atexit`` handlers run (logging's flush, lm-eval's
    and the hub's locks and sessions, multiprocessing's children, ``weakref.finalize`` callbacks such
    as temporary folders' removal, Ray's shutdown), and stdout and stderr are flushed. Inside a
    ``torch.distributed`` process group (a ``torchrun`` worker that did not destroy it) the process
    exits the ordinary way, so that the group's own teardown runs."""
    import atexit
    import os
    import threading

    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        print(code, file=sys.stderr)
        status = 1
    distributed = sys.modules.get("torch.distributed")
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's; elsewhere the ordinary exit
    if run_exit_handlers is None or (distributed is not None and distributed.is_available()
                                     and distributed.is_initialized()):
        sys.exit(status)
    for thread in threading.enumerate():  # what the interpreter waits for before its teardown
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: Python's own exit reports it with status 120
            status = status or 120
    os._exit(status)


if __name__ == "__main__":
    main()
