"""The incremental, parallel scan of the content directory.

A file whose size and mtime match the previous scan's state is not read.
Otherwise it is read and hashed; the same hash (and the same settings) costs
a hash, not a parse. Changed files are parsed, and normalized by the
`finish` function the pipeline passes in, in worker processes when there are
many. Two posts claiming one guid or one permalink are both reported; the
one already stored (else the first by path) keeps it.

Nothing is lost to what cannot be read: a broken post keeps its last good
version, and so do the posts under a folder that cannot be listed; when
the content directory itself is missing or unreadable, `root_failed` tells
the pipeline to mark nothing gone. A post that trips a bug is that post's
failure (its traceback logged), never the scan's.

No database access: the pipeline passes the previous state in and writes
what `Scanner.outcome` says.
"""

from __future__ import annotations

import hashlib
import logging
import os
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace

from aggregator.errors import AggregatorError, SourceError
from aggregator.model import ContentFileState, Entry, Failure, RawItem
from aggregator.sources.content import ContentSettings, FoundFile, list_files, read_bytes, read_file
from aggregator.workers import process_context

log = logging.getLogger(__name__)

#: below this many files to parse, worker processes cost more than they save
PARALLEL_THRESHOLD = 200

#: turns a RawItem into an Entry (normalize, bound to its settings); must pickle
Finish = Callable[[RawItem], Entry]
#: a file to read, with its previous state
Task = tuple[FoundFile, ContentFileState | None]


@dataclass(frozen=True)
class PostResult:
    """What reading one changed file gave."""

    file: FoundFile
    #: the new state, or None when the file failed
    state: ContentFileState | None
    #: the entry, or None for a draft, a failure, or an unchanged hash
    entry: Entry | None = None
    #: the bytes hashed the same as before: nothing was parsed
    same_bytes: bool = False
    failure: Failure | None = None
    warnings: tuple[str, ...] = ()
    #: the traceback of a bug met while reading this file (logged by the scan)
    internal_error: str | None = None


def _work(task: Task, settings: ContentSettings, finish: Finish) -> PostResult:
    """Read, hash and (if the bytes changed) parse one file. Runs in a worker."""
    f, previous = task
    fingerprint = settings.fingerprint()
    try:
        data = read_bytes(f.path, settings.max_size)
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if previous is not None and previous.hash == digest:
            if previous.settings_hash == fingerprint:
                state = replace(previous, size=f.size, mtime_ns=f.mtime_ns)
                return PostResult(f, state, same_bytes=True)
            previous_for_read = None  # settings changed, the content did not: not an edit
        else:
            previous_for_read = previous
        item, warnings = read_file(f.path, settings, f.rel, data, previous_for_read)
        entry = None if item.draft else finish(item)
    except SourceError as e:
        return PostResult(f, None, failure=Failure(e.location, e.reason))
    except AggregatorError as e:
        return PostResult(f, None, failure=Failure(str(f.path), str(e)))
    except Exception as e:  # a bug: this post fails, the scan goes on
        return PostResult(
            f,
            None,
            failure=Failure(str(f.path), f"internal error while reading this post: {e!r}"),
            internal_error=traceback.format_exc(),
        )
    state = ContentFileState(
        path=f.rel, size=f.size, mtime_ns=f.mtime_ns, hash=digest,
        guid=entry.guid if entry else None, link=entry.link if entry else None,
        settings_hash=fingerprint,
    )  # fmt: skip
    return PostResult(f, state, entry=entry, warnings=tuple(warnings))


def _work_chunk(
    chunk: list[Task],
    settings: ContentSettings,
    finish: Finish,
) -> list[PostResult]:
    return [_work(task, settings, finish) for task in chunk]


def read_changed(
    tasks: list[Task],
    settings: ContentSettings,
    finish: Finish,
    workers: int | None = None,
) -> Iterator[PostResult]:
    """Read the given files, in path order; in worker processes when there are many."""
    workers = workers or os.cpu_count() or 1
    if len(tasks) < PARALLEL_THRESHOLD or workers < 2:
        for task in tasks:
            yield _work(task, settings, finish)
        return
    # Chunks amortize the cost of a round trip to a worker; several per
    # worker keep both cores busy to the end.
    size = max(16, min(256, len(tasks) // (workers * 8)))
    chunks = deque(tasks[i : i + size] for i in range(0, len(tasks), size))
    while chunks:
        lost = yield from _read_chunks(chunks, settings, finish, workers)
        # A worker died (killed for memory?) and took the pool with it: the
        # files in flight are read again one at a time, so the one that
        # kills a worker is known and fails alone; then the rest go on.
        yield from _read_one_by_one(lost, settings, finish)


def _read_chunks(
    chunks: deque[list[Task]], settings: ContentSettings, finish: Finish, workers: int
) -> Generator[PostResult, None, list[Task]]:
    """Read `chunks` (taken from the left) in a pool of `workers`, in order.

    Returns the files of the chunks in flight if a worker died, else [].
    """
    with ProcessPoolExecutor(max_workers=workers, mp_context=process_context()) as pool:
        # A few chunks in flight per worker: enough to keep them busy, few
        # enough that finished results never pile up in memory.
        pending: deque[tuple[list[Task], Future[list[PostResult]]]] = deque()
        while chunks or pending:
            while chunks and len(pending) < workers * 3:
                chunk = chunks.popleft()
                pending.append((chunk, pool.submit(_work_chunk, chunk, settings, finish)))
            try:
                results = pending[0][1].result()
            except BrokenProcessPool:
                return [task for chunk, _ in pending for task in chunk]
            pending.popleft()
            yield from results
    return []


def _read_one_by_one(
    tasks: list[Task], settings: ContentSettings, finish: Finish
) -> Iterator[PostResult]:
    """Read `tasks` in order, one at a time in one worker; a file whose reading
    kills the worker fails, and a new worker goes on with the next."""
    pool: ProcessPoolExecutor | None = None
    try:
        for task in tasks:
            if pool is None:
                pool = ProcessPoolExecutor(max_workers=1, mp_context=process_context())
            try:
                results = pool.submit(_work_chunk, [task], settings, finish).result()
            except BrokenProcessPool:
                pool.shutdown()
                pool = None
                reason = "the process reading this post died (out of memory?); not ingested"
                results = [PostResult(task[0], None, failure=Failure(str(task[0].path), reason))]
            yield from results
    finally:
        if pool is not None:
            pool.shutdown()


@dataclass
class ScanOutcome:
    """What an incremental scan found, once every file was seen."""

    failures: list[Failure] = field(default_factory=list)
    warnings: list[Failure] = field(default_factory=list)
    #: guids still in the directory (including a broken file's last good guid)
    present: set[str] = field(default_factory=set)
    #: state rows to write (new, changed or touched files)
    states: list[ContentFileState] = field(default_factory=list)
    #: state rows to delete (files gone from the directory)
    removed: list[str] = field(default_factory=list)
    #: files read (not skipped by size and mtime)
    read: int = 0
    #: files parsed (their bytes changed)
    parsed: int = 0
    #: the content directory itself is missing or unreadable: mark nothing gone
    root_failed: bool = False


class Scanner:
    """One incremental scan of the content directory.

    Give it the previous scan's state; iterate `batches()` for the entries
    to upsert; then `outcome` says what is present, what failed, and which
    state rows to write. No database access: the pipeline does that.
    """

    def __init__(
        self,
        settings: ContentSettings,
        previous: Mapping[str, ContentFileState],
        finish: Finish,
        workers: int | None = None,
    ) -> None:
        self.settings = settings
        self.previous = previous
        self.finish = finish
        self.workers = workers
        self.outcome = ScanOutcome()

    def batches(self, size: int = 500) -> Iterator[list[Entry]]:
        """Entries to upsert, a batch at a time (memory stays flat)."""
        out = self.outcome
        listing = list_files(self.settings)
        found = listing.found
        out.failures += listing.failures
        out.root_failed = listing.root_failed
        fingerprint = self.settings.fingerprint()
        existing = {f.rel for f in found}
        # Claims on guids and permalinks: the files already stored hold theirs.
        claims = _Claims()
        # Files not found under a folder that could not be read are not
        # gone: they keep their state, their guid and their claims.
        for rel in sorted(set(self.previous) - existing):
            kept = self.previous[rel]
            if _under(rel, listing.unreadable):
                claims.claim(kept, rel)
                if kept.guid:
                    out.present.add(kept.guid)
            else:
                out.removed.append(rel)
        todo: list[Task] = []
        for f in found:
            prev = self.previous.get(f.rel)
            if prev is not None:
                claims.claim(prev, f.rel)
            if (
                prev is not None
                and prev.size == f.size
                and prev.mtime_ns == f.mtime_ns
                and prev.settings_hash == fingerprint
            ):
                if prev.guid:
                    out.present.add(prev.guid)
            else:
                todo.append((f, prev))
        out.read = len(todo)
        batch: list[Entry] = []
        for r in read_changed(todo, self.settings, self.finish, self.workers):
            prev = self.previous.get(r.file.rel)
            out.warnings += [Failure(str(r.file.path), w) for w in r.warnings]
            if r.state is None:  # broken: its last good version stays
                assert r.failure is not None
                if r.internal_error is not None:
                    log.error("%s: reading the post failed\n%s", r.file.path, r.internal_error)
                out.failures.append(r.failure)
                if prev is not None and prev.guid:
                    out.present.add(prev.guid)
                continue
            if r.same_bytes:
                out.states.append(r.state)
                if r.state.guid:
                    out.present.add(r.state.guid)
                continue
            out.parsed += 1
            claims.release(r.file.rel)
            clash = claims.clash(r.state, r.file.rel)
            if clash is not None:
                key, other = clash
                out.failures.append(
                    Failure(str(r.file.path), f"{key} is also claimed by {other}; not ingested")
                )
                out.failures.append(
                    Failure(
                        str(self.settings.dir / other),
                        f"{key} is also claimed by {r.file.rel}, which was not ingested",
                    )
                )
                if prev is not None and prev.guid:
                    out.present.add(prev.guid)
                    claims.claim(prev, r.file.rel)
                continue
            claims.claim(r.state, r.file.rel)
            out.states.append(r.state)
            if r.entry is not None:
                out.present.add(r.entry.guid)
                batch.append(r.entry)
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch


def _under(rel: str, folders: list[str]) -> bool:
    """Is `rel` one of `folders` or inside one ("." is the content directory)?"""
    return any(d in (".", rel) or rel.startswith(d + "/") for d in folders)


class _Claims:
    """Who holds each guid and each permalink."""

    def __init__(self) -> None:
        self.owner: dict[str, str] = {}
        self.held: dict[str, list[str]] = {}

    def _keys(self, state: ContentFileState) -> list[str]:
        keys = []
        if state.guid:
            keys.append(f"id {state.guid!r}")
        if state.link:
            keys.append(f"permalink {state.link}")
        return keys

    def claim(self, state: ContentFileState, rel: str) -> None:
        for key in self._keys(state):
            self.owner.setdefault(key, rel)
            self.held.setdefault(rel, []).append(key)

    def release(self, rel: str) -> None:
        for key in self.held.pop(rel, []):
            if self.owner.get(key) == rel:
                del self.owner[key]

    def clash(self, state: ContentFileState, rel: str) -> tuple[str, str] | None:
        for key in self._keys(state):
            other = self.owner.get(key)
            if other is not None and other != rel:
                return key, other
        return None
