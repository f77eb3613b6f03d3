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
    #: the base of relative links in content_html (a feed's xml:base); default: link
    base_url: str | None = None


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
    #: dedupe's MinHash index of the text, computed with it (in the parsing
    #: worker) so dedupe need not re-read and re-hash it; None: not computed
    lsh: LshIndex | None = None


@dataclass(frozen=True)
class LshIndex:
    """An entry's near-duplicate index (fingerprint.text_identity)."""

    #: fingerprint.SIGNATURE_VERSION when computed: another version is stale
    version: int
    #: the text's weight in words: its keys count only from near_min_words up
    weight: float
    #: the MinHash LSH band keys of the text, whatever its weight
    keys: tuple[int, ...]


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
    #: why it was linked: "guid", "url", "fingerprint", "near"
    dup_reason: str | None = None
    #: the similarity that confirmed a text match (0..1), if any
    dup_score: float | None = None


@dataclass(frozen=True)
class FeedMeta:
    """What an external feed says about itself, for atom:source in our feeds."""

    #: the feed's own atom:id (or RSS channel link); None when it gives none
    id: str | None
    title: str | None
    #: the feed's web page (its alternate link)
    link: str | None


@dataclass(frozen=True)
class DupeLink:
    """A decision of dedupe: `entry_id` is a copy of `canonical_id`."""

    entry_id: int
    canonical_id: int
    reason: str
    #: the similarity that confirmed a text match (0..1); None for key matches
    score: float | None = None


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
    #: things read but worth a look (a post with no date)
    warnings: tuple[Failure, ...] = ()
    #: a feed that was not fetched (not due) or not parsed (304, same body)
    fetch: str = ""

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

    @property
    def warnings(self) -> tuple[Failure, ...]:
        return tuple(w for r in self.results for w in r.warnings)


@dataclass(frozen=True)
class BuildReport:
    """The outcome of one build: files written, stale ones removed, the email previewed."""

    written: tuple[str, ...] = field(default_factory=tuple)
    failures: tuple[Failure, ...] = ()
    #: files the previous build produced and this one no longer does, deleted
    removed: tuple[str, ...] = ()
    #: the issue whose preview (email.html, email.txt) was written, if one was
    email_preview: str | None = None


@dataclass(frozen=True)
class SourceStatus:
    """A source as `aggregator status` shows it."""

    source: Source
    last_checked: datetime | None
    #: "ok", "error" or "never"
    last_status: str
    last_error: str | None
    entry_count: int
    #: feeds: why fetching stopped (410 Gone); None while it is fetched
    disabled_reason: str | None = None
    #: feeds: the address a permanent redirect moved it to (fetched from there)
    moved_to: str | None = None
    #: feeds: when it is fetched next
    next_fetch: datetime | None = None
    #: feeds: failures in a row (the backoff grows with it)
    consecutive_errors: int = 0


@dataclass(frozen=True)
class FeedState:
    """What the store remembers between fetches of one feed."""

    #: validators sent back as If-None-Match / If-Modified-Since
    etag: str | None = None
    last_modified: str | None = None
    #: hash of the last body parsed: the same body again is not parsed again
    body_hash: str | None = None
    next_fetch: datetime | None = None
    consecutive_errors: int = 0
    #: set when the feed answered 410 Gone; it is no longer fetched
    disabled_reason: str | None = None
    #: the feed's new URL after a permanent redirect; fetched instead of the key
    moved_to: str | None = None
    #: the last fetch that answered (200 or 304)
    last_success: datetime | None = None


@dataclass(frozen=True)
class DedupeCandidate:
    """The few fields dedupe looks at, loaded cheaply from the store."""

    id: int
    source_id: int
    kind: SourceKind
    canonical_url: str
    fingerprint: str
    published: datetime
    #: the source's own id, for the "guid" layers
    guid: str = ""
    #: the entry's own link (not its canonical), for re-issued guids
    link: str = ""


@dataclass(frozen=True)
class DupeCluster:
    """One article and its copies, as `aggregator dupes` lists them."""

    canonical: StoredEntry
    #: the linked copies, each with its dup_reason and dup_score
    copies: tuple[StoredEntry, ...]


@dataclass(frozen=True)
class ContentFileState:
    """What the last scan saw of one file in the content directory.

    A file whose size and mtime match is not read again; one whose bytes
    hash the same is not parsed again.
    """

    #: path relative to the content directory, with "/" separators
    path: str
    size: int
    mtime_ns: int
    #: hash of the file's bytes
    hash: str
    #: the entry's guid; None for a draft (nothing published)
    guid: str | None
    #: the entry's permalink, to report two posts claiming one URL
    link: str | None
    #: hash of the settings the file was read with; a change forces a re-read
    settings_hash: str


@dataclass(frozen=True)
class GuidRow:
    """A stored feed entry without a link, as the guid upgrade looks at it
    (normalize.adopt_guids): the fields an older derived guid was made of."""

    id: int
    guid: str
    title: str
    text: str
    published: datetime
    #: the text's fingerprint (fingerprint.text_fingerprint), as stored
    fingerprint: str = ""


# -- the newsletter: subscribers, issues, deliveries -------------------------


class SubscriberStatus(StrEnum):
    """Whether a subscriber gets the next issue."""

    ACTIVE = "active"  #: receives every issue
    UNSUBSCRIBED = "unsubscribed"  #: asked to stop (link, admin, or left config.toml)
    BOUNCING = "bouncing"  #: the server refused the address permanently (5xx)


@dataclass(frozen=True)
class Subscriber:
    """Someone who receives the email digest."""

    id: int
    #: normalized by email-validator; unique
    email: str
    name: str
    status: SubscriberStatus
    #: the secret in the unsubscribe link: random, URL-safe, unguessable
    token: str
    #: listed in config.toml right now (the database keeps status and token)
    in_config: bool = False
    #: why the status last changed ("unsubscribe link", "removed from config.toml", ...)
    note: str = ""


@dataclass(frozen=True)
class Issue:
    """One composed issue of the email digest, stored as it was sent.

    `html` and `text` hold UNSUBSCRIBE_PLACEHOLDER where each subscriber's
    own unsubscribe token goes; everything else is exactly what was sent.
    """

    #: "2026-W47": the ISO week of the issue in [site] timezone
    key: str
    #: entries first seen up to this instant (UTC) belong to this issue or earlier ones
    cutoff: datetime
    subject: str
    html: str
    text: str
    #: the web archive page (issues/<key>.html): every entry of the issue
    archive_html: str
    #: entries in the issue (the email may show fewer when they do not fit)
    entry_count: int
    #: entries the email shows
    shown_count: int
    created: datetime


#: where a subscriber's unsubscribe token goes in a stored issue's html and text
UNSUBSCRIBE_PLACEHOLDER = "__AGGREGATOR_UNSUBSCRIBE_TOKEN__"


class DeliveryStatus(StrEnum):
    """Where one (issue, subscriber) delivery stands; see newsletter/smtp.py."""

    CLAIMED = "claimed"  #: a sender owns it; no message bytes have left yet
    SENDING = "sending"  #: the server said 354; the message is being handed over
    SENT = "sent"  #: the server accepted it (250)
    UNCERTAIN = "uncertain"  #: the sender died or the link dropped while handing it over
    DEFERRED = "deferred"  #: transient failures used up the retries; the next send retries
    FAILED = "failed"  #: permanent failure (5xx); never retried


@dataclass(frozen=True)
class Delivery:
    """The record of one (issue, subscriber) delivery."""

    issue: str
    subscriber_id: int
    status: DeliveryStatus
    attempts: int
    error: str | None
    #: "host:pid:nonce" of the process holding the claim
    owner: str | None
    claimed_at: datetime | None
    sent_at: datetime | None


@dataclass(frozen=True)
class SendReport:
    """The outcome of one `send`."""

    #: the issue's key, or None when there was nothing to send
    issue: str | None
    #: subscribers the message went to in this run (or .eml files written, dry run)
    sent: int = 0
    #: active subscribers who already had this issue from an earlier run
    already: int = 0
    #: left for another process that holds their claim right now
    busy: int = 0
    #: permanent (5xx) and transient-exhausted failures, one per subscriber
    failures: tuple[Failure, ...] = ()
    #: deliveries interrupted mid-handover: assumed delivered, not resent
    uncertain: tuple[str, ...] = ()
    #: True when the issue had no entries and was not sent (email.send_empty = false)
    empty: bool = False
    dry_run: bool = False
    #: the .eml files written by a dry run
    written: tuple[str, ...] = ()
    #: the issue was composed by this run (False: an existing issue was resumed)
    composed: bool = False


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
