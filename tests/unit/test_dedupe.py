from __future__ import annotations

from datetime import timedelta

from aggregator.dedupe import DedupeSettings, cluster
from aggregator.model import DedupeCandidate, DupeLink, SourceKind
from tests.factories import T0

SETTINGS = DedupeSettings(near_threshold=0.8, near_min_words=50)


def cand(id: int, source: int, url: str = "", fp: str = "", days: int = 0) -> DedupeCandidate:
    kind = SourceKind.CONTENT if source == 1 else SourceKind.FEED
    return DedupeCandidate(id, source, kind, url, fp, T0 + timedelta(days=days))


def test_same_canonical_url_across_sources_links_to_the_earliest() -> None:
    links = cluster([cand(1, 2, "u", days=2), cand(2, 3, "u", days=1)], SETTINGS)
    assert links == [DupeLink(1, 2, "url")]


def test_content_post_wins_over_an_earlier_external_copy() -> None:
    links = cluster([cand(1, 2, fp="f", days=0), cand(2, 1, fp="f", days=5)], SETTINGS)
    assert links == [DupeLink(1, 2, "fingerprint")]


def test_distinct_entries_and_same_source_are_not_merged() -> None:
    assert cluster([cand(1, 2, "u1", "f1"), cand(2, 3, "u2", "f2")], SETTINGS) == []
    assert cluster([cand(1, 2, "u", "f"), cand(2, 2, "u", "f")], SETTINGS) == []


def test_empty_keys_never_match() -> None:
    assert cluster([cand(1, 2), cand(2, 3)], SETTINGS) == []
