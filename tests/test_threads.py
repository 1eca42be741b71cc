"""The thread policy: one thread per core that other processes leave free, at least one; and the
measure of busy cores it rests on, checked against /proc/stat snapshots written by hand."""

from __future__ import annotations

import os

import pytest

from seethrough import _threads


def test_policy_by_hand(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    for busy, local, expected in [(0.0, 1, 4), (1.2, 1, 3), (3.9, 1, 1), (8.0, 1, 1), (0.0, 2, 2), (3.0, 2, 1)]:
        monkeypatch.setattr(_threads, "busy_cores", lambda interval=0.2, b=busy: b)
        assert _threads.default_threads(local) == expected


def test_busy_cores_from_two_snapshots_by_hand(tmp_path, monkeypatch):
    """Between the snapshots: 300 jiffies pass (guest time excluded: the kernel counts it inside user),
    of which 60 idle and 40 iowait, so 2/3 of the 4 cores were busy."""
    stat = tmp_path / "stat"
    # fields: user nice system idle iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 10 100 800 20 5 5 0 50 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    later = "cpu  210 10 180 860 60 15 5 0 90 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
    slept = []

    def sleep(seconds):  # the other processes run while this one sleeps
        slept.append(seconds)
        stat.write_text(later)

    monkeypatch.setattr(_threads.time, "sleep", sleep)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert _threads.busy_cores(0.05, stat=str(stat)) == pytest.approx(4 * (1 - 100 / 300))
    assert slept == [0.05]


def test_busy_cores_falls_back_to_the_load_average(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 9.0, 9.0))
    assert _threads.busy_cores(0.0, stat=str(tmp_path / "missing")) == 1.5
    (tmp_path / "garbled").write_text("cpu  not numbers\n")
    assert _threads.busy_cores(0.0, stat=str(tmp_path / "garbled")) == 1.5

    def no_loadavg():
        raise OSError("no load average here")

    monkeypatch.setattr(os, "getloadavg", no_loadavg)
    assert _threads.busy_cores(0.0, stat=str(tmp_path / "missing")) == 0.0
