"""RFC 5005 archives, tag grouping and the pagination bar: pure decisions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from aggregator.digest import DigestSettings, feed_history, tags_of
from aggregator.model import DigestEntry, StoredEntry
from aggregator.render.pages import page_numbers
from tests.factories import T0, stored

SETTINGS = DigestSettings(
    page_size=3, excerpt_length=50, lead_count=1, lead_excerpt_length=80, ellipsis="..."
)


def newest_first(items: list[StoredEntry]) -> list[StoredEntry]:
    return sorted(items, key=lambda s: s.entry.published, reverse=True)


def ids(entries: Sequence[DigestEntry]) -> list[int]:
    return [d.stored.id for d in entries]


def test_blocks_are_cut_by_arrival_and_the_rest_is_current() -> None:
    items = [stored(i, guid=f"g{i}", published=T0 + timedelta(days=i)) for i in range(1, 8)]
    history = feed_history([1, 2, 3, 4, 5, 6, 7], newest_first(items), {}, SETTINGS, 2)
    assert [a.number for a in history.archives] == [1, 2, 3]
    assert [ids(a.entries) for a in history.archives] == [[2, 1], [4, 3], [6, 5]]
    # entry 7 is not archived yet; the current document is topped up to page_size
    assert ids(history.current) == [7, 6, 5]


def test_a_late_back_dated_entry_never_moves_archived_entries() -> None:
    items = [stored(i, guid=f"g{i}", published=T0 + timedelta(days=i)) for i in range(1, 5)]
    before = feed_history([1, 2, 3, 4], newest_first(items), {}, SETTINGS, 2)
    old = stored(5, guid="g5", published=T0 - timedelta(days=100))
    after = feed_history([1, 2, 3, 4, 5], newest_first([*items, old]), {}, SETTINGS, 2)
    assert after.archives == before.archives
    assert 5 in ids(after.current), "an entry not yet archived must be in the current document"


def test_every_visible_entry_is_reachable() -> None:
    items = [stored(i, guid=f"g{i}", published=T0 + timedelta(hours=i)) for i in range(1, 24)]
    slots = list(range(1, 30))  # some slots belong to hidden rows (duplicates, gone)
    history = feed_history(slots, newest_first(items[::2]), {}, SETTINGS, 4)
    reached = set(ids(history.current))
    for archive in history.archives:
        reached |= set(ids(archive.entries))
    assert reached == {s.id for s in items[::2]}


def test_feed_excerpts_do_not_depend_on_position() -> None:
    text = "word " * 40
    items = [stored(i, guid=f"g{i}", text=text, published=T0 + timedelta(days=i)) for i in (1, 2)]
    history = feed_history([1, 2], newest_first(items), {}, SETTINGS, 10)
    assert len({d.excerpt for d in history.current}) == 1


def test_tags_group_by_slug_and_show_the_most_used_spelling() -> None:
    a = stored(1, guid="a", tags=("Deep Learning", "机器学习"))
    b = stored(2, guid="b", tags=("deep learning",))
    c = stored(3, guid="c", tags=("deep learning", "Deep-Learning"))
    tags = {t.slug: t for t in tags_of([a, b, c])}
    assert set(tags) == {"deep-learning", "机器学习"}
    assert tags["deep-learning"].name == "deep learning"
    assert [s.id for s in tags["deep-learning"].entries] == [1, 2, 3]  # c listed once


def test_pagination_bar() -> None:
    assert page_numbers(1, 1) == [1]
    assert page_numbers(1, 3) == [1, 2, 3]
    assert page_numbers(1, 20) == [1, 2, 3, None, 20]
    assert page_numbers(10, 20) == [1, None, 8, 9, 10, 11, 12, None, 20]
    assert page_numbers(4, 20) == [1, 2, 3, 4, 5, 6, None, 20]  # no "1 … 3"
