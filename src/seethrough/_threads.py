"""How many CPU threads torch should use when the user did not say."""

from __future__ import annotations

import os


def default_threads(local_processes: int = 1) -> int:
    """The cores this process may use, shared among the local processes, minus the cores other
    processes keep busy (the 1-minute load average), and at least one.

    Why not torch's default (one thread per core): a parallel region waits for its slowest thread,
    so when another process holds a core, every region stalls on the thread that was descheduled.
    On a 2-core machine this made a whole lm-eval run 8x slower (shared/research notes); one thread
    per free core avoids that, and on an idle machine it is torch's default.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // max(1, local_processes))
    try:
        busy = int(os.getloadavg()[0] + 0.5)
    except OSError:
        busy = 0
    return max(1, min(share, cores - busy))
