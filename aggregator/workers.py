"""Worker processes: how to start them, and the parser pool kept across ingests.

Parsing and normalizing hold the GIL, so feeds are read in worker processes
to use every core. The parser pool is started on first use and kept: the
daemon ingests every few minutes and reuses it (a spawned worker costs the
better part of a second of CPU to start, importing the program again). A
pool whose worker died (BrokenProcessPool) is dropped, and the next call
starts a fresh one. concurrent.futures stops the workers at interpreter
exit.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_pool_size = 0


def process_context() -> BaseContext:
    """How to start worker processes from this process, now.

    fork is cheapest (the child has everything imported already), but
    forking a process that runs other threads (the daemon's scheduler, a
    resolver thread of asyncio) can deadlock in the child: then forkserver,
    whose server process has one thread. macOS has no safe fork at all.
    """
    single = threading.active_count() == 1
    return multiprocessing.get_context(
        "fork" if single and sys.platform == "linux" else "forkserver"
    )


def parser_pool(workers: int) -> ProcessPoolExecutor:
    """The pool of `workers` parser processes, started if need be.

    Call it first before any other thread starts (before the event loop)
    so that the workers can be forked: a new pool forks them at once.
    """
    global _pool, _pool_size
    with _lock:
        if _pool is not None and _pool_size != workers:
            _pool.shutdown(wait=False, cancel_futures=True)
            _pool = None
        if _pool is None:
            context = process_context()
            _pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_exit_with_parent)
            _pool_size = workers
            if context.get_start_method() == "fork":
                # The first task forks every worker: now, while this
                # process still has a single thread.
                _pool.submit(int).result()
        return _pool


def _exit_with_parent() -> None:
    """Pool initializer: end this worker as soon as the process that started it
    dies, even by SIGKILL.

    A worker waits for tasks on a queue whose write end it holds itself, so
    it would never notice; the pool is kept between ingests, so a daemon
    killed while idle would leave its workers (and their forkserver) running
    for good. The parent's sentinel becomes readable when the parent is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def discard(pool: ProcessPoolExecutor) -> None:
    """Drop `pool` (a worker died): the next parser_pool() starts a fresh one."""
    global _pool
    with _lock:
        if _pool is pool:
            _pool = None
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the parser workers now (tests, benchmarks, the daemon's exit)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)
