"""The thread policy: one thread per core that other processes leave free, at least one."""

from __future__ import annotations

import os

from seethrough import _threads


def test_policy_by_hand(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for busy, local, expected in [(0.0, 1, 4), (1.2, 1, 3), (3.9, 1, 1), (8.0, 1, 1), (0.0, 2, 2), (3.0, 2, 1)]:
        monkeypatch.setattr(_threads, "busy_cores", lambda interval=0.2, b=busy: b)
        assert _threads.default_threads(local) == expected


def test_busy_cores_is_a_share_of_the_machine():
    busy = _threads.busy_cores(0.05)
    assert 0.0 <= busy <= (os.cpu_count() or 1)
