"""How a command-line process ends: :func:`exit_without_teardown`, for the ``seethrough`` and
``seethrough-lm-eval`` entry points only (never library code: it does not return)."""

from __future__ import annotations

import atexit
import os
import sys
import threading


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
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on stderr, status 1
        sys.stderr.write(f"{code}\n")
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
