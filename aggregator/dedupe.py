"""Dedupe: link syndicated copies of one article to one canonical entry.

Pure: takes DedupeCandidate values, returns DupeLink decisions; the store
records them. Rows are linked, never deleted, so a wrong merge can be undone.

Theory of operation (today):
- Two entries from different sources are the same article when their
  canonical URLs are equal (see urls.canonical_url) or when the fingerprints
  of their plain text are equal (the same words, whitespace and case folded).
- Entries of one source are never merged with each other here: a source's
  own identity is (source, guid), handled by the store's upsert.
- Each cluster gets one canonical entry: the writer's own post wins over
  any external copy; otherwise the earliest published; ties by id.
"""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.model import DedupeCandidate, DupeLink, SourceKind


def cluster(candidates: Sequence[DedupeCandidate]) -> list[DupeLink]:
    """Decide which entries are copies of which; return one link per copy."""
    parent = {c.id: c.id for c in candidates}
    reason: dict[int, str] = {}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for key_name in ("url", "fingerprint"):
        first: dict[str, DedupeCandidate] = {}
        for c in sorted(candidates, key=lambda c: c.id):
            key = c.canonical_url if key_name == "url" else c.fingerprint
            if not key:
                continue
            seen = first.get(key)
            if seen is None:
                first[key] = c
                continue
            if seen.source_id == c.source_id:
                continue
            a, b = find(seen.id), find(c.id)
            if a != b:
                parent[b] = a
                reason.setdefault(c.id, key_name)
                reason.setdefault(seen.id, key_name)

    groups: dict[int, list[DedupeCandidate]] = {}
    for c in candidates:
        groups.setdefault(find(c.id), []).append(c)
    links: list[DupeLink] = []
    for members in groups.values():
        if len(members) < 2:
            continue
        head = min(members, key=canonical_order)
        for m in sorted(members, key=lambda m: m.id):
            if m.id != head.id:
                links.append(DupeLink(m.id, head.id, reason.get(m.id, "url")))
    return sorted(links, key=lambda link: link.entry_id)


def canonical_order(c: DedupeCandidate) -> tuple[int, object, int]:
    """Sort key: content posts first, then the earliest published, then id."""
    return (0 if c.kind is SourceKind.CONTENT else 1, c.published, c.id)
