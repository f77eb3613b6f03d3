"""What goes in the digest and in what order. Pure, no IO.

Newest first; the first `lead_count` entries of a page get the longer excerpt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aggregator.model import DigestEntry, Page, StoredEntry
from aggregator.slugs import tag_slug
from aggregator.text import excerpt


@dataclass(frozen=True)
class DigestSettings:
    page_size: int
    excerpt_length: int
    lead_count: int
    lead_excerpt_length: int
    ellipsis: str


def entry_excerpt(stored: StoredEntry, length: int, ellipsis: str) -> str:
    """The excerpt every output shows: the author's summary, else cut text."""
    e = stored.entry
    return e.summary if e.summary else excerpt(e.text, length, ellipsis)


def paginate(
    visible: Sequence[StoredEntry],
    also_in: Mapping[int, Sequence[str]],
    settings: DigestSettings,
) -> list[Page]:
    """Split entries (already newest first) into pages; always at least one."""
    size = settings.page_size
    chunks = [visible[i : i + size] for i in range(0, len(visible), size)] or [[]]
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        shown = []
        for i, stored in enumerate(chunk):
            length = (
                settings.lead_excerpt_length if i < settings.lead_count else settings.excerpt_length
            )
            shown.append(
                DigestEntry(
                    stored=stored,
                    excerpt=entry_excerpt(stored, length, settings.ellipsis),
                    also_in=tuple(also_in.get(stored.id, ())),
                )
            )
        pages.append(Page(number=number, total=len(chunks), entries=tuple(shown)))
    return pages


def also_in_names(canonical: StoredEntry, copies: Sequence[StoredEntry]) -> tuple[str, ...]:
    """Names of the other sources carrying the same article, in first-seen order."""
    names = [c.source.name for c in copies if c.source.name != canonical.source.name]
    return tuple(dict.fromkeys(names))


# -- feed history (RFC 5005 archives) and tags ---------------------------------


@dataclass(frozen=True)
class Archive:
    """One archive document: a fixed block of the feed's history."""

    number: int  #: 1 is the oldest
    entries: tuple[DigestEntry, ...]  #: newest first


@dataclass(frozen=True)
class FeedHistory:
    """The Atom feed as RFC 5005 section 4 splits it: current document and archives."""

    #: the subscription document's entries, newest first
    current: tuple[DigestEntry, ...]
    #: complete archive documents, oldest first
    archives: tuple[Archive, ...]


def feed_entry(
    stored: StoredEntry, also_in: Mapping[int, Sequence[str]], length: int, ellipsis: str
) -> DigestEntry:
    """An entry as every feed shows it: one excerpt length, so it never changes with position."""
    return DigestEntry(
        stored=stored,
        excerpt=entry_excerpt(stored, length, ellipsis),
        also_in=tuple(also_in.get(stored.id, ())),
    )


def feed_history(
    slots: Sequence[int],
    visible: Sequence[StoredEntry],
    also_in: Mapping[int, Sequence[str]],
    settings: DigestSettings,
    archive_size: int,
) -> FeedHistory:
    """Split the feed into archives of fixed blocks and a current document.

    `slots` is every entry id the store ever held, in the order they arrived
    (ids are never reused, rows never deleted). Block k holds the entries
    whose arrival rank is in [k * archive_size, (k + 1) * archive_size); a
    block becomes an archive once every slot in it is taken. Because blocks
    are cut by arrival, not by date, a new entry (even a back-dated one)
    never moves an older entry to another archive: an archive changes only
    when one of its own entries is edited, hidden as a duplicate or deleted.
    The current document holds every entry not yet archived, topped up with
    the newest entries to at least `page_size`, so it is never empty after
    a block fills; a reader dedupes the overlap by entry id.
    """
    rank = {entry_id: i for i, entry_id in enumerate(slots)}
    complete = len(slots) // archive_size
    blocks: list[list[DigestEntry]] = [[] for _ in range(complete)]
    current: list[DigestEntry] = []
    for i, stored in enumerate(visible):  # newest first, and so is each block
        shown = feed_entry(stored, also_in, settings.excerpt_length, settings.ellipsis)
        block = rank.get(stored.id, len(slots)) // archive_size
        if block < complete:
            blocks[block].append(shown)
        if block >= complete or i < settings.page_size:
            current.append(shown)
    return FeedHistory(
        current=tuple(current),
        archives=tuple(Archive(number=k + 1, entries=tuple(b)) for k, b in enumerate(blocks)),
    )


@dataclass(frozen=True)
class Tag:
    """A tag with its slug and every visible entry carrying it, newest first."""

    slug: str
    #: the spelling shown: the most used one among the entries sharing the slug
    name: str
    entries: tuple[StoredEntry, ...]


def feed_entries(
    entries: Sequence[StoredEntry],
    also_in: Mapping[int, Sequence[str]],
    settings: DigestSettings,
) -> tuple[DigestEntry, ...]:
    """The newest `page_size` of `entries` as a feed shows them (a tag's feed)."""
    return tuple(
        feed_entry(s, also_in, settings.excerpt_length, settings.ellipsis)
        for s in entries[: settings.page_size]
    )


def tags_of(visible: Sequence[StoredEntry]) -> list[Tag]:
    """Every tag of the visible entries, grouped by slug, ordered by slug."""
    spellings: dict[str, dict[str, int]] = {}
    members: dict[str, list[StoredEntry]] = {}
    for stored in visible:
        seen: set[str] = set()
        for tag in stored.entry.tags:
            slug = tag_slug(tag)
            counts = spellings.setdefault(slug, {})
            counts[tag] = counts.get(tag, 0) + 1
            if slug not in seen:  # "ML" and "ml" on one entry list it once
                seen.add(slug)
                members.setdefault(slug, []).append(stored)
    return [
        Tag(
            slug=slug,
            name=min(spellings[slug].items(), key=lambda kv: (-kv[1], kv[0]))[0],
            entries=tuple(members[slug]),
        )
        for slug in sorted(members)
    ]
