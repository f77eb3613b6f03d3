"""The labeled dedupe corpus (tests/data/dedupe): loading cases and judging them.

Each case is judged on its own: its entries are normalized exactly as an
ingest would, then clustered by the same functions the pipeline uses.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from aggregator import dedupe, fingerprint
from aggregator.model import DedupeCandidate, DupeLink, Entry, RawItem, SourceKind
from aggregator.normalize import normalize
from aggregator.text import markdown_to_html
from tests.factories import T0

DATA = Path(__file__).resolve().parent / "data" / "dedupe"
NOW = T0 + timedelta(days=60)
#: the thresholds the corpus is labeled against (config.toml's [dedupe] defaults)
SETTINGS = dedupe.DedupeSettings(near_threshold=0.8, near_min_words=50)


@dataclass(frozen=True)
class CorpusEntry:
    source: str
    item: RawItem


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  #: "merge" or "apart"
    layers: frozenset[str]  #: for a merge: the reasons the copies must carry
    canonical: int  #: for a merge: index of the entry that must be canonical
    tracking_params: tuple[str, ...]
    entries: tuple[CorpusEntry, ...]


def load_cases() -> list[Case]:
    articles = tomllib.loads((DATA / "articles.toml").read_text(encoding="utf-8"))
    data = tomllib.loads((DATA / "cases.toml").read_text(encoding="utf-8"))
    return [_case(c, articles) for c in data["case"]]


def _case(c: dict[str, Any], articles: dict[str, str]) -> Case:
    name = c["name"]
    entries = tuple(_entry(name, i, e, articles) for i, e in enumerate(c["entries"]))
    assert c["expect"] in ("merge", "apart"), name
    return Case(
        name=name,
        expect=c["expect"],
        layers=frozenset(c.get("layer", "").split(",")) - {""},
        canonical=c.get("canonical", 0),
        tracking_params=tuple(c.get("tracking_params", ())),
        entries=entries,
    )


def _entry(case: str, i: int, e: dict[str, Any], articles: dict[str, str]) -> CorpusEntry:
    if "article" in e:
        keys = [e["article"]] if isinstance(e["article"], str) else e["article"]
        body = "\n\n".join(articles[k] for k in keys)
    else:
        body = e["body"]
    for old, new in e.get("edits", []):
        assert old in body, f"{case}: edit {old!r} not found"
        body = body.replace(old, new)
    if "prepend" in e:
        body = e["prepend"] + "\n\n" + body
    if "append" in e:
        body = body + "\n\n" + e["append"]
    html = markdown_to_html(body)
    if e.get("wrap"):
        html = f'<div class="entry-content">\n<div class="post">{html}</div>\n</div>'
    item = RawItem(
        location=f"{case}#{i}",
        guid=e.get("guid", f"{case}/{i}"),
        title=e.get("title", case),
        link=e["link"],
        canonical_link=e.get("canonical"),
        published=T0 + timedelta(days=e.get("days", i)),
        updated=None,
        author="",
        content_html=html,
        summary=None,
    )
    return CorpusEntry(e["source"], item)


def entries_of(case: Case) -> list[tuple[str, Entry]]:
    """(source name, normalized entry) for each entry of the case."""
    return [
        (
            ce.source,
            normalize(ce.item, ce.item.link or "", NOW, tracking_params=case.tracking_params),
        )
        for ce in case.entries
    ]


def candidates_of(case: Case) -> tuple[list[DedupeCandidate], dict[int, str]]:
    """Dedupe candidates (ids 1..n, one source id per source name) and texts."""
    source_ids: dict[str, int] = {}
    cands = []
    texts = {}
    for i, (src, e) in enumerate(entries_of(case), start=1):
        sid = source_ids.setdefault(src, len(source_ids) + 1)
        kind = SourceKind.CONTENT if src == "content" else SourceKind.FEED
        cands.append(
            DedupeCandidate(
                i, sid, kind, e.canonical_url, e.fingerprint, e.published, e.guid, e.link
            )
        )
        texts[i] = e.text
    return cands, texts


def cluster_case(case: Case, settings: dedupe.DedupeSettings) -> list[DupeLink]:
    """Cluster a case with LSH buckets built from the entries' texts."""
    cands, texts = candidates_of(case)
    buckets: dict[int, list[int]] = {}
    for c in cands:
        for key in fingerprint.lsh_keys(texts[c.id], settings.near_min_words):
            buckets.setdefault(key, []).append(c.id)
    return dedupe.cluster(cands, settings, buckets, texts, ())


@dataclass(frozen=True)
class Verdict:
    case: Case
    merged: bool  #: all entries in one cluster
    apart: bool  #: no two entries linked
    problems: tuple[str, ...]  #: label mismatches (empty when the case passes)


def judge_case(case: Case, links: Sequence[DupeLink]) -> Verdict:
    """Compare links (entry ids 1..n) with the case's label."""
    n = len(case.entries)
    heads = {link.entry_id: link.canonical_id for link in links}
    roots = {i: heads.get(i, i) for i in range(1, n + 1)}
    merged = len(set(roots.values())) == 1
    apart = not links
    problems: list[str] = []
    if case.expect == "merge":
        if not merged:
            problems.append(f"not merged: links {links}")
        else:
            want = case.canonical + 1
            if roots[1] != want:
                problems.append(f"canonical is entry {roots[1] - 1}, not {case.canonical}")
            reasons = {link.reason for link in links}
            if case.layers and reasons != case.layers:
                problems.append(f"reasons {sorted(reasons)}, expected {sorted(case.layers)}")
    elif not apart:
        problems.append(f"merged: {links}")
    return Verdict(case, merged, apart, tuple(problems))
