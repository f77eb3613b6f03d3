"""Builders for domain values in tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aggregator.model import Entry, RawItem, Source, SourceKind, StoredEntry

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def raw_item(**kw: Any) -> RawItem:
    values: dict[str, Any] = {
        "location": "test.md",
        "guid": "post-1",
        "title": "A post",
        "link": "https://blog.example.org/posts/post-1/",
        "canonical_link": None,
        "published": T0,
        "updated": None,
        "author": "Someone",
        "content_html": "<p>Hello world, this is a post.</p>",
        "summary": None,
        "tags": (),
    }
    values.update(kw)
    return RawItem(**values)


def entry(**kw: Any) -> Entry:
    values: dict[str, Any] = {
        "guid": "post-1",
        "title": "A post",
        "link": "https://blog.example.org/posts/post-1/",
        "canonical_url": "https://blog.example.org/posts/post-1",
        "published": T0,
        "updated": T0,
        "author": "Someone",
        "content_html": "<p>Hello</p>",
        "text": "Hello",
        "summary": None,
        "tags": (),
        "content_hash": "h1",
        "fingerprint": "",
    }
    values.update(kw)
    return Entry(**values)


def source(
    kind: SourceKind = SourceKind.FEED, key: str = "https://f.example/feed", name: str = "F"
) -> Source:
    return Source(kind=kind, key=key, name=name)


def stored(id: int = 1, src: Source | None = None, **kw: Any) -> StoredEntry:
    return StoredEntry(id=id, source=src or source(), entry=entry(**kw), first_seen=T0)
