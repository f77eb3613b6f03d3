"""The run lock: one writer at a time, whether cron or the daemon started it.

A lock file holds the holder's PID. The lock itself is an advisory `flock`
on that file, which the kernel drops when the holder dies, however it dies:
so a lock file left by a killed process is *stale* (its PID is written but
nobody holds the flock) and the next run takes it over, saying so. The PID
is only for messages; liveness is never guessed from it (PIDs are reused).

POSIX only (fcntl): cron and systemd deployments are POSIX.

What this module does not do: decide what to do when the lock is held
(cron-mode commands exit with EXIT_LOCKED, daemon jobs wait or skip).
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aggregator.errors import AggregatorError

log = logging.getLogger(__name__)


class LockHeld(AggregatorError):
    """Another run holds the lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        super().__init__(
            f"another aggregator run ({who}) holds the lock {path}; not starting a second one"
        )
        self.path = path
        self.pid = pid


class RunLock:
    """An exclusive lock on `path`. Use `hold()` or acquire()/release()."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        #: PID found in a lock file nobody held: a run that died
        self.took_over_from: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if free; False if another holder has it."""
        if self._fd is not None:
            raise RuntimeError("lock already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        stale = _read_pid(fd)
        if stale and stale != os.getpid():
            self.took_over_from = stale
            log.warning(
                "took over a stale lock %s left by process %s, which is gone",
                self.path,
                stale,
                extra={"lock": str(self.path), "stale_pid": stale},
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return True

    def acquire(self, wait: float = 0.0, stop: threading.Event | None = None) -> None:
        """Take the lock, waiting up to `wait` seconds; raise LockHeld if still taken.

        `stop` (set on shutdown) ends the wait early.
        """
        stop = stop or threading.Event()
        remaining = wait
        delay = 0.05
        while not self.try_acquire():
            if remaining <= 0 or stop.is_set():
                raise LockHeld(self.path, holder_pid(self.path))
            stop.wait(min(delay, remaining))
            remaining -= delay
            delay = min(delay * 2, 1.0)

    def release(self) -> None:
        """Empty the file (so the next run sees a clean release) and unlock."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            # The file is kept: unlinking a lock file races with a process
            # that has just opened it and would lock a deleted inode.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@contextmanager
def hold(path: Path, wait: float = 0.0, stop: threading.Event | None = None) -> Iterator[RunLock]:
    """Hold the run lock at `path` for the duration of the block."""
    lock = RunLock(path)
    lock.acquire(wait, stop)
    try:
        yield lock
    finally:
        lock.release()


def holder_pid(path: Path) -> int | None:
    """The PID written in the lock file, if any (for messages only)."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _read_pid(fd: int) -> int | None:
    data = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    return int(data) if data.isdigit() else None
