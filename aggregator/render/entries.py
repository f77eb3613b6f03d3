"""What every writer (Atom, RSS, JSON Feed, pages, email) does to entries
before it shows them, and how it survives one it cannot write.

- `for_readers`: an entry's link passes the URL policy again
  (urls.public_url: http and https only), and its text is made XML-safe
  again. normalize already did both for what it stores now; a row stored
  before the policy existed must not put `javascript:` in an output either.
- `skipping_unwritable`: a writer renders all its entries at once; if that
  raises, it finds the entries that cannot be written alone, leaves them out
  and reports each as a Failure naming the entry and the file. A build never
  fails for the content of one entry. The first try is the whole document,
  so the usual build costs nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from aggregator.model import DigestEntry, Failure, FeedMeta, StoredEntry
from aggregator.text import xml_safe
from aggregator.urls import public_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rendered:
    """A renderer's output: {relative path: bytes}, and the entries it left out."""

    files: dict[str, bytes]
    failures: tuple[Failure, ...] = ()


def merge(*parts: Rendered) -> Rendered:
    """Several renderers' outputs as one; two claiming one path is a bug (ValueError)."""
    files: dict[str, bytes] = {}
    failures: list[Failure] = []
    for part in parts:
        for path, data in part.files.items():
            if path in files:
                raise ValueError(f"two outputs claim the same path: {path}")
            files[path] = data
        failures.extend(part.failures)
    return Rendered(files, tuple(dict.fromkeys(failures)))


def for_readers(entries: Sequence[DigestEntry]) -> tuple[DigestEntry, ...]:
    """`entries` as any output may show them (see the module's docstring)."""
    return tuple(_for_readers(d) for d in entries)


def _for_readers(d: DigestEntry) -> DigestEntry:
    e = d.stored.entry
    link = public_url(e.link) or ""
    strings = (e.title, e.author, e.content_html, e.text, e.summary or "", d.excerpt)
    if link == e.link and all(xml_safe(s) is s for s in (*strings, *e.tags, *d.also_in)):
        return d  # the usual case: nothing to copy
    entry = replace(
        e,
        link=link,
        title=xml_safe(e.title),
        author=xml_safe(e.author),
        content_html=xml_safe(e.content_html),
        text=xml_safe(e.text),
        summary=xml_safe(e.summary) if e.summary else e.summary,
        tags=tuple(xml_safe(t) for t in e.tags),
    )
    return replace(
        d,
        stored=replace(d.stored, entry=entry),
        excerpt=xml_safe(d.excerpt),
        also_in=tuple(xml_safe(a) for a in d.also_in),
    )


def meta_for_readers(feeds: Mapping[str, FeedMeta]) -> dict[str, FeedMeta]:
    """What external feeds say about themselves, their links through the URL policy."""
    return {
        key: FeedMeta(
            id=xml_safe(m.id) if m.id else None,
            title=xml_safe(m.title) if m.title else None,
            link=public_url(m.link),
        )
        for key, m in feeds.items()
    }


def entry_location(stored: StoredEntry) -> str:
    """Where an entry comes from, for a message: its source and its id there."""
    return f"{stored.source.key} (entry {stored.entry.guid!r})"


R = TypeVar("R")


def skipping_unwritable(
    render: Callable[[Sequence[DigestEntry]], R], entries: Sequence[DigestEntry], path: str
) -> tuple[R, tuple[Failure, ...]]:
    """`render(entries)`, or, if that raises, `render` of the entries that can
    be written, with a Failure for each one left out of `path`.

    An entry cannot be written when rendering it alone raises. If every entry
    can be written alone, the fault is not one entry's: the first error is
    raised again.
    """
    try:
        return render(entries), ()
    except Exception as whole:
        bad: dict[int, Exception] = {}
        for i, d in enumerate(entries):
            try:
                render([d])
            except Exception as e:  # this entry cannot be written
                bad[i] = e
        if not bad:
            raise whole from None
        failures = []
        for i, error in bad.items():
            where = entry_location(entries[i].stored)
            log.warning("%s: left out of %s", where, path, exc_info=error)
            failures.append(Failure(where, f"left out of {path}: cannot be written ({error})"))
        kept = [d for i, d in enumerate(entries) if i not in bad]
        return render(kept), tuple(failures)
