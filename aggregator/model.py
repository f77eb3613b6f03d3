"""Domain values that travel along the pipeline's arrows.

Every value here is a frozen dataclass: no database sessions, no HTTP
responses, no IO. One type per boundary: a source yields RawItem, normalize
makes an Entry, the store hands back StoredEntry, digest picks DigestEntry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class SourceKind(StrEnum):
    """Where entries come from."""

    CONTENT = "content"  #: the writer's own Markdown directory
    FEED = "feed"  #: an external RSS/Atom feed


@dataclass(frozen=True)
class Source:
    """A configured place entries come from."""

    #: content or feed
    kind: SourceKind
    #: identity of the source: the content directory's path, or the feed URL
    key: str
    #: the name readers see ("also in: <name>")
    name: str
    #: tags added to every entry of this source
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RawItem:
    """One post or feed item as its source read it, before normalization."""

    #: where it was read, for messages: a path, or "URL#entry-N"
    location: str
    #: the source's own identifier (front matter id/slug, Atom id, RSS guid)
    guid: str | None
    title: str | None
    #: the item's web address (permalink)
    link: str | None
    #: an explicit canonical address (front matter `canonical`, rel=canonical)
    canonical_link: str | None
    published: datetime | None
    updated: datetime | None
    author: str | None
    #: the body as HTML (Markdown already rendered for content posts); unsanitized
    content_html: str
    #: an explicit summary written by the author, plain text
    summary: str | None
    tags: tuple[str, ...] = ()
    #: a draft is read (so errors show) but never published
    draft: bool = False


@dataclass(frozen=True)
class Entry:
    """A normalized entry: one shape for every source."""

    #: unique within its source
    guid: str
    title: str
    link: str
    #: the link in canonical form, for dedupe across sources
    canonical_url: str
    #: timezone-aware, UTC
    published: datetime
    #: timezone-aware, UTC
    updated: datetime
    author: str
    #: sanitized HTML with absolute URLs
    content_html: str
    #: plain text of the content, whitespace folded
    text: str
    #: the author's own summary, if any
    summary: str | None
    tags: tuple[str, ...]
    #: hash of the fields a reader sees; a change means the entry was edited
    content_hash: str
    #: hash of the normalized text, for dedupe of syndicated copies
    fingerprint: str


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the store holds it, with its identity and dedupe links."""

    id: int
    source: Source
    entry: Entry
    #: when this entry first reached the store (UTC)
    first_seen: datetime
    #: id of the canonical entry this one duplicates, or None if it is canonical
    duplicate_of: int | None = None
    #: why it was linked: "url", "fingerprint", ...
    dup_reason: str | None = None


@dataclass(frozen=True)
class DupeLink:
    """A decision of dedupe: `entry_id` is a copy of `canonical_id`."""

    entry_id: int
    canonical_id: int
    reason: str


@dataclass(frozen=True)
class DigestEntry:
    """An entry as an output shows it."""

    stored: StoredEntry
    #: the excerpt to show (plain text)
    excerpt: str
    #: names of other sources that carry the same article
    also_in: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page:
    """One page of the digest (web page or feed document)."""

    number: int  #: 1-based
    total: int  #: number of pages
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class Failure:
    """One thing that went wrong, reported and skipped."""

    #: a path with ":line" when known, or a URL
    location: str
    reason: str

    def __str__(self) -> str:
        return f"{self.location}: {self.reason}"


@dataclass(frozen=True)
class SourceResult:
    """What one source yielded in one ingest."""

    source: Source
    #: items read successfully
    items: int = 0
    #: entries that were new to the store
    new: int = 0
    #: entries whose content changed
    changed: int = 0
    #: per-item failures (one bad post) and whole-source failures (feed down)
    failures: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ingest over every source."""

    results: tuple[SourceResult, ...]
    #: dedupe links made in this ingest
    linked: int = 0

    @property
    def failures(self) -> tuple[Failure, ...]:
        return tuple(f for r in self.results for f in r.failures)


@dataclass(frozen=True)
class BuildReport:
    """The outcome of one build: files written."""

    written: tuple[str, ...] = field(default_factory=tuple)
    failures: tuple[Failure, ...] = ()


@dataclass(frozen=True)
class SourceStatus:
    """A source as `aggregator status` shows it."""

    source: Source
    last_checked: datetime | None
    #: "ok", "error" or "never"
    last_status: str
    last_error: str | None
    entry_count: int


@dataclass(frozen=True)
class DedupeCandidate:
    """The few fields dedupe looks at, loaded cheaply from the store."""

    id: int
    source_id: int
    kind: SourceKind
    canonical_url: str
    fingerprint: str
    published: datetime


@dataclass(frozen=True)
class Run:
    """One run of a job (ingest, build, send, housekeeping), as recorded."""

    job: str
    started: datetime
    #: None while running, or when the process died mid-run
    finished: datetime | None
    #: True when the job finished without an exception
    ok: bool | None
    #: the exception's message when it failed
    error: str | None = None
    #: a one-line summary ("50 sources, 2 failed")
    detail: str | None = None


@dataclass(frozen=True)
class JobStatus:
    """What `status` and the health endpoint say about one kind of job."""

    job: str
    #: the most recent run, finished or not
    last: Run | None
    #: the most recent run that finished ok
    last_ok: Run | None


@dataclass(frozen=True)
class ScheduledJob:
    """A job in the daemon's persistent schedule."""

    id: str
    #: None when the job is paused
    next_run: datetime | None
