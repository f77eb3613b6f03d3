"""The run lock: one holder at a time, a clear message, stale locks taken over."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aggregator.lock import LockHeld, RunLock, hold, holder_pid


def test_second_holder_is_refused_with_the_first_holders_pid(tmp_path: Path) -> None:
    path = tmp_path / "data" / "aggregator.lock"
    with hold(path):
        assert holder_pid(path) == os.getpid()
        with pytest.raises(LockHeld) as e:
            RunLock(path).acquire()
        assert str(os.getpid()) in str(e.value) and str(path) in str(e.value)
    # released: the file stays (no unlink races) but is empty, and the lock is free
    assert path.read_text() == ""
    with hold(path):
        pass


def test_a_waiting_holder_gets_the_lock_when_it_is_released(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = RunLock(path)
    assert first.try_acquire()
    started = time.monotonic()
    with pytest.raises(LockHeld):
        RunLock(path).acquire(wait=0.3)
    assert time.monotonic() - started >= 0.25
    first.release()
    second = RunLock(path)
    second.acquire(wait=1.0)
    assert second.held
    second.release()


HOLDER = """
import sys, time
from pathlib import Path
from aggregator.lock import RunLock
lock = RunLock(Path(sys.argv[1]))
assert lock.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_lock_left_by_a_killed_process_is_taken_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "aggregator.lock"
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld, match=str(child.pid)):
            RunLock(path).acquire()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert holder_pid(path) == child.pid  # the dead holder's PID is still written
    lock = RunLock(path)
    with caplog.at_level(logging.WARNING, logger="aggregator.lock"):
        lock.acquire()
    assert lock.took_over_from == child.pid
    assert f"stale lock {path} left by process {child.pid}" in caplog.text
    assert holder_pid(path) == os.getpid()
    lock.release()
