"""How many CPU threads torch should use when the user did not say."""

from __future__ import annotations

import os
import time


def default_threads(local_processes: int = 1) -> int:
    """The cores this process may use, shared among the local processes, minus the cores other
    processes are keeping busy right now, and at least one.

    Why not torch's default (one thread per core): a parallel region waits for its slowest thread,
    so when another process holds a core, every region stalls on the thread that was descheduled.
    On a 2-core machine that made a whole lm-eval run 8x slower (shared/research notes), and
    ``benchmarks/threads_under_load.py`` measures it for seethrough's backend. On an idle machine
    this is torch's default.
    """
    cores = available_cores()
    share = max(1, cores // max(1, local_processes))
    return max(1, min(share, cores - round(busy_cores())))


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def busy_cores(interval: float = 0.2, stat: str = "/proc/stat") -> float:
    """Cores in use by other processes now: ``stat`` (/proc/stat) sampled over ``interval`` seconds while
    this process sleeps (the load average lags by a minute); the 1-minute load average where there is no /proc."""
    def snapshot() -> tuple[int, int]:
        with open(stat, encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal: the kernel counts guest and guest_nice (fields
        # 9 and 10) inside user and nice already, so adding them would count a VM's guests twice
        return sum(fields[:8]), fields[3] + fields[4]  # all jiffies, idle + iowait

    try:
        total0, idle0 = snapshot()
        time.sleep(interval)
        total1, idle1 = snapshot()
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0
    cores = os.cpu_count() or 1
    return cores * (1 - (idle1 - idle0) / max(1, total1 - total0))
