"""What goes in the digest and in what order. Pure, no IO.

Newest first; the first `lead_count` entries of a page get the longer excerpt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aggregator.model import DigestEntry, Page, StoredEntry
from aggregator.text import excerpt


@dataclass(frozen=True)
class DigestSettings:
    page_size: int
    excerpt_length: int
    lead_count: int
    lead_excerpt_length: int
    ellipsis: str = "..."


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
