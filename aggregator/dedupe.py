"""Dedupe: link syndicated copies of one article to one canonical entry.

Pure: takes DedupeCandidate values (plus LSH buckets, texts and the user's
splits), returns DupeLink decisions; the store records them. Rows are
linked, never deleted, so a wrong merge can be undone (`aggregator dupes
split`).

Fundamental observations
- A wrong merge silently hides a post; a missed merge shows a copy twice.
  The first is far worse, so every layer is conservative.
- A source never carries one article twice, except a feed that re-issues an
  entry under a new guid (same link, same text). Two other entries of one
  source are two articles, so a cluster never holds them both, however
  similar their words (a weekly template, a series).
- Identity keys (guid, canonical URL, text fingerprint, LSH bucket) only
  propose pairs; each pair is then judged alone, and clusters are built
  from judged pairs, strongest evidence first.

Theory of operation: layers, each recorded as the link's reason
- same source, same guid: one row, updated in place by the store (no link).
- "guid", same source: a new guid, the same link, and near-identical full
  texts: the feed re-issued the entry.
- "guid", across sources: the same globally unique id (a tag:, urn: or
  http(s) id), as a planet or mirror passes the original's id on.
- "url", across sources: the same canonical URL (urls.canonical_url), from
  the link or from an explicit canonical (front matter, rel=canonical,
  feedburner:origLink). A site's front page never counts, nor a URL a
  source gives to several of its entries.
- "fingerprint", across sources: the same words (text_fingerprint:
  boilerplate stripped, case and punctuation folded).
- "near", across sources: shares an LSH bucket of MinHash signatures over
  word shingles (CJK: character shingles), then confirmed on the full texts
  (fingerprint.near_score: Jaccard >= threshold and no passage replaced on
  both sides). Texts too short to judge are never near-matched.

Canonical entry: the writer's own post (content directory) wins over any
external copy; otherwise the earliest published; ties by id.

Known special cases
- Keys shared by more than `max_group` entries (a boilerplate-only text, a
  feed linking every entry to one page) are skipped, never all-pairs.
- A split (`aggregator dupes split`) is a cannot-link pair; it holds in
  every later clustering, incremental or full.
- Incremental clustering re-judges a neighbourhood: the changed entries,
  every entry sharing a key with them, and the whole clusters those belong
  to. `cluster` is the same function for that scope and for a full
  re-cluster (`aggregator dupes --recluster`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from aggregator import fingerprint
from aggregator.model import DedupeCandidate, DupeLink, SourceKind
from aggregator.urls import canonical_url, is_article_url

GUID = "guid"
URL = "url"
FINGERPRINT = "fingerprint"
NEAR = "near"
#: stronger evidence first: clusters are built from the strongest pairs
_RANK = {GUID: 0, URL: 1, FINGERPRINT: 2, NEAR: 3}
#: guids that are unique across the web, not only within one feed
_GLOBAL_GUID_PREFIXES = ("tag:", "urn:", "http://", "https://")


@dataclass(frozen=True)
class DedupeSettings:
    """Thresholds of the near-duplicate layer and the group-size guard."""

    #: Jaccard similarity of shingle sets at or above which texts may be copies
    near_threshold: float
    #: texts lighter than this many words are never near-matched
    near_min_words: int
    #: the longest passage (in words) that may differ on both sides of a copy
    max_replaced_words: int = 12
    #: keys shared by more entries than this propose no pairs
    max_group: int = 50


@dataclass(frozen=True)
class Pair:
    """Two entries a key proposed as copies, with the layers that proposed them."""

    a: int
    b: int
    layers: frozenset[str]


def propose(
    candidates: Sequence[DedupeCandidate],
    buckets: Mapping[int, Sequence[int]],
    settings: DedupeSettings,
) -> list[Pair]:
    """Pairs of candidates that share an identity key or an LSH bucket."""
    by_id = {c.id: c for c in candidates}
    found: dict[tuple[int, int], set[str]] = defaultdict(set)

    def add(group: Iterable[int], layer: str) -> None:
        ids = sorted(set(group))
        if len(ids) < 2 or len(ids) > settings.max_group:
            return
        for a, b in combinations(ids, 2):
            found[(a, b)].add(layer)

    guid_groups: dict[str, list[int]] = defaultdict(list)
    url_groups: dict[str, list[DedupeCandidate]] = defaultdict(list)
    fp_groups: dict[str, list[int]] = defaultdict(list)
    link_groups: dict[tuple[int, str], list[int]] = defaultdict(list)
    for c in candidates:
        if c.guid.startswith(_GLOBAL_GUID_PREFIXES):
            guid_groups[c.guid].append(c.id)
        if is_article_url(c.canonical_url):
            url_groups[c.canonical_url].append(c)
        if c.fingerprint:
            fp_groups[c.fingerprint].append(c.id)
        link = _link_key(c)
        if link:
            link_groups[(c.source_id, link)].append(c.id)
    for ids in guid_groups.values():
        add(ids, GUID)
    for link_ids in link_groups.values():
        add(link_ids, "link")
    for members in url_groups.values():
        # A URL a source gives to several of its entries names a page, not an article.
        per_source: dict[int, int] = defaultdict(int)
        for c in members:
            per_source[c.source_id] += 1
        add((c.id for c in members if per_source[c.source_id] == 1), URL)
    for ids in fp_groups.values():
        add(ids, FINGERPRINT)
    for bucket in buckets.values():
        add((i for i in bucket if i in by_id), NEAR)
    pairs = []
    for (a, b), layers in sorted(found.items()):
        same_source = by_id[a].source_id == by_id[b].source_id
        if same_source and "link" not in layers:
            continue  # within a source only a re-issued entry (same link) can match
        if not same_source:
            layers.discard("link")
        pairs.append(Pair(a, b, frozenset(layers)))
    return pairs


def texts_needed(pairs: Iterable[Pair]) -> set[int]:
    """Ids whose full text must be read to judge `pairs`."""
    need: set[int] = set()
    for p in pairs:
        if "link" in p.layers or p.layers == {NEAR}:
            need.update((p.a, p.b))
    return need


@dataclass(frozen=True)
class Edge:
    a: int
    b: int
    reason: str
    score: float | None


def judge(
    pairs: Iterable[Pair],
    candidates: Mapping[int, DedupeCandidate],
    texts: Mapping[int, str],
    settings: DedupeSettings,
) -> list[Edge]:
    """Confirm or reject each proposed pair; return the confirmed ones."""
    prepared: dict[int, fingerprint.Prepared] = {}

    def near(a: int, b: int) -> float | None:
        if a not in texts or b not in texts:
            return None
        for i in (a, b):
            if i not in prepared:
                prepared[i] = fingerprint.Prepared(texts[i])
        return fingerprint.near_score(
            prepared[a],
            prepared[b],
            settings.near_threshold,
            settings.near_min_words,
            settings.max_replaced_words,
        )

    edges = []
    for p in pairs:
        ca, cb = candidates[p.a], candidates[p.b]
        if "link" in p.layers:  # same source: a re-issued guid, if the texts agree
            if ca.guid == cb.guid:
                continue
            if ca.fingerprint and ca.fingerprint == cb.fingerprint:
                edges.append(Edge(p.a, p.b, GUID, 1.0))
            elif (score := near(p.a, p.b)) is not None:
                edges.append(Edge(p.a, p.b, GUID, score))
            continue
        if GUID in p.layers:
            edges.append(Edge(p.a, p.b, GUID, None))
        elif URL in p.layers:
            edges.append(Edge(p.a, p.b, URL, None))
        elif FINGERPRINT in p.layers:
            edges.append(Edge(p.a, p.b, FINGERPRINT, None))
        elif (score := near(p.a, p.b)) is not None:
            edges.append(Edge(p.a, p.b, NEAR, score))
    return edges


def cluster(
    candidates: Sequence[DedupeCandidate],
    settings: DedupeSettings,
    buckets: Mapping[int, Sequence[int]] | None = None,
    texts: Mapping[int, str] | None = None,
    splits: Collection[frozenset[int]] = (),
) -> list[DupeLink]:
    """Decide which entries are copies of which; return one link per copy.

    `buckets` maps an LSH bucket key to the entries in it; `texts` holds the
    full text of every entry named by texts_needed(propose(...)); `splits`
    are pairs the user declared different. Entries of one clustering scope
    only: links to entries outside `candidates` are never made.
    """
    pairs = propose(candidates, buckets or {}, settings)
    by_id = {c.id: c for c in candidates}
    edges = judge(pairs, by_id, texts or {}, settings)
    return build_clusters(by_id, edges, splits)


def build_clusters(
    by_id: Mapping[int, DedupeCandidate],
    edges: Sequence[Edge],
    splits: Collection[frozenset[int]],
) -> list[DupeLink]:
    """Union confirmed pairs, strongest first, never across a split or
    across two distinct entries of one source; elect one canonical each."""
    reissued = {
        frozenset((e.a, e.b)) for e in edges if by_id[e.a].source_id == by_id[e.b].source_id
    }
    parted: dict[int, set[int]] = defaultdict(set)
    for pair in splits:
        if len(pair) == 2:
            x, y = tuple(pair)
            parted[x].add(y)
            parted[y].add(x)
    members: dict[int, list[int]] = {i: [i] for i in by_id}
    root: dict[int, int] = {i: i for i in by_id}
    reason: dict[int, tuple[str, float | None]] = {}

    def compatible(ra: int, rb: int) -> bool:
        for x in members[ra]:
            for y in members[rb]:
                if y in parted[x]:
                    return False
                if by_id[x].source_id == by_id[y].source_id and frozenset((x, y)) not in reissued:
                    return False
        return True

    def strength(e: Edge) -> tuple[int, float, float, int, int]:
        gap = abs((by_id[e.a].published - by_id[e.b].published).total_seconds())
        return (_RANK[e.reason], -(e.score or 1.0), gap, e.a, e.b)

    for e in sorted(edges, key=strength):
        ra, rb = root[e.a], root[e.b]
        if ra == rb or not compatible(ra, rb):
            continue
        if len(members[ra]) < len(members[rb]):
            ra, rb = rb, ra
        for m in members.pop(rb):
            root[m] = ra
            members[ra].append(m)
        reason.setdefault(e.a, (e.reason, e.score))
        reason.setdefault(e.b, (e.reason, e.score))

    links: list[DupeLink] = []
    for group in members.values():
        if len(group) < 2:
            continue
        head = min((by_id[i] for i in group), key=canonical_order)
        for m in sorted(group):
            if m != head.id:
                why, score = reason[m]
                links.append(DupeLink(m, head.id, why, score))
    return sorted(links, key=lambda link: link.entry_id)


def canonical_order(c: DedupeCandidate) -> tuple[int, object, int]:
    """Sort key: content posts first, then the earliest published, then id."""
    return (0 if c.kind is SourceKind.CONTENT else 1, c.published, c.id)


def _link_key(c: DedupeCandidate) -> str:
    """The entry's own link in canonical form, for the same-source layer."""
    return canonical_url(c.link) if c.link else ""


def describe(reason: str | None, score: float | None) -> str:
    """A link's reason as `aggregator dupes` shows it: "url", "near: 0.93"."""
    if reason is None:
        return ""
    if reason == NEAR and score is not None:
        return f"near: {score:.2f}"
    if reason == GUID and score is not None:
        return f"guid (re-issued, same link, text {score:.2f})"
    return reason
