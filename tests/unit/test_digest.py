from __future__ import annotations

from aggregator.digest import DigestSettings, also_in_names, paginate
from aggregator.model import SourceKind
from tests.factories import source, stored

SETTINGS = DigestSettings(
    page_size=2, excerpt_length=10, lead_count=1, lead_excerpt_length=30, ellipsis="..."
)
TEXT = "word " * 20


def test_pages_split_and_leads_get_longer_excerpts() -> None:
    items = [stored(i, text=TEXT) for i in range(1, 6)]
    pages = paginate(items, {}, SETTINGS)
    assert [len(p.entries) for p in pages] == [2, 2, 1]
    assert all(p.total == 3 for p in pages)
    first = pages[0].entries
    assert len(first[0].excerpt) > len(first[1].excerpt)
    assert len(first[1].excerpt) <= 10 + 3


def test_summary_wins_over_text() -> None:
    (page,) = paginate([stored(1, text=TEXT, summary="Author's own words")], {}, SETTINGS)
    assert page.entries[0].excerpt == "Author's own words"


def test_empty_digest_is_one_empty_page() -> None:
    pages = paginate([], {}, SETTINGS)
    assert len(pages) == 1 and pages[0].entries == ()


def test_also_in_lists_other_sources_once() -> None:
    mine = stored(1, source(SourceKind.CONTENT, "/c", "Mine"))
    copies = [
        stored(2, source(key="a", name="A")),
        stored(3, source(key="a2", name="A")),
        stored(4, source(key="b", name="B")),
    ]
    assert also_in_names(mine, copies) == ("A", "B")
