"""Asking the parser pool which processes it has, so that every worker answers.

Light on purpose: the pool's workers import this module to run
pid_when_all_meet (a forkserver worker starts with nothing imported), and so
does the subprocess of test_workers_end_with_a_killed_parent.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from aggregator import workers

#: how long the workers wait for each other (reached only when something is wrong)
MEETING_TIMEOUT = 60.0


def worker_pids(size: int) -> set[int]:
    """The PIDs of the `size` processes of the parser pool: every one of them answers.

    Asking the pool for os.getpid() many times is not enough: one worker may
    take every task before another is scheduled at all, and a forkserver pool
    starts a worker only when no idle one is left. Here each of `size` tasks
    holds its worker until `size` workers hold one, so they run at once, in
    `size` different processes (started if need be).
    """
    pool = workers.parser_pool(size)
    with tempfile.TemporaryDirectory() as meeting:
        tasks = [pool.submit(pid_when_all_meet, meeting, size) for _ in range(size)]
        return {t.result() for t in tasks}


def pid_when_all_meet(meeting: str, parties: int) -> int:
    """In a worker: this process's PID, once `parties` processes have arrived in `meeting`."""
    Path(meeting, str(os.getpid())).touch()
    deadline = time.monotonic() + MEETING_TIMEOUT
    while len(os.listdir(meeting)) < parties and time.monotonic() < deadline:
        time.sleep(0.01)
    return os.getpid()
