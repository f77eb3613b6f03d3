"""The identity of a feed item with no id and no link: derived from what it
says (normalize.derived_guid), and rows stored under the old derivation taken
over by the new one (normalize.adopt_guids)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from aggregator.fingerprint import text_identity
from aggregator.model import Entry, GuidRow
from aggregator.normalize import adopt_guids, derived_guid, is_derived, normalize
from tests.factories import raw_item

NOW = datetime(2026, 11, 22, tzinfo=UTC)
BASE = "https://friend.example.net/feed.rss"


def id_less(**kw: object) -> Entry:
    values: dict[str, object] = {"guid": None, "link": None, "published": None}
    values.update(kw)
    return normalize(raw_item(**values), BASE, NOW)


def v1_guid(title: str, published: datetime, text: str) -> str:
    """The guid version 1 gave (normalize before 2026-11): the reading time was
    the published date of an undated item."""
    parts = ["guid", title, published.isoformat(), text]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def test_the_guid_does_not_depend_on_when_or_where_the_item_was_read() -> None:
    a = normalize(raw_item(guid=None, link=None, published=None, location="f#entry-1"), BASE, NOW)
    later = NOW + timedelta(hours=5)
    b = normalize(raw_item(guid=None, link=None, published=None, location="f#entry-7"), BASE, later)
    assert a.published != b.published  # an undated item is dated when it is read...
    assert a.guid == b.guid and is_derived(a.guid)  # ...but keeps its identity


def test_the_guid_follows_what_the_item_says() -> None:
    base = derived_guid(raw_item(guid=None, link=None))
    # Re-indented, it says the same thing.
    spaced = raw_item(guid=None, link=None, content_html="<p>Hello world,\n   this is a post.</p>")
    assert derived_guid(spaced) == base
    for change in (
        {"title": "Another post"},
        {"author": "Someone else"},
        {"published": NOW},
        {"content_html": "<p>Hello world, this is another post.</p>"},
        {"summary": "A summary of its own"},
        # Two episodes titled alike differ by their enclosure (parse.py adds the links).
        {"content_html": '<p>Hello world, this is a post.</p><ul class="enclosures">'
         '<li><a href="https://cdn.example/ep2.mp3">ep2.mp3</a> (audio/mpeg)</li></ul>'},
    ):  # fmt: skip
        assert derived_guid(raw_item(guid=None, link=None, **change)) != base, change


def test_an_own_id_or_link_is_kept_as_the_guid() -> None:
    assert normalize(raw_item(guid="tag:x,2026:1"), BASE, NOW).guid == "tag:x,2026:1"
    assert normalize(raw_item(guid=None), BASE, NOW).guid == raw_item().link


def row(id: int, e: Entry, guid: str | None = None, published: datetime | None = None) -> GuidRow:
    when = published or e.published
    return GuidRow(id, guid or v1_guid(e.title, when, e.text), e.title, e.text, when)


def test_rows_of_the_old_derivation_are_taken_over_oldest_first() -> None:
    a = id_less(title="A", content_html="<p>Alpha words</p>")
    b = id_less(title="B", content_html="<p>Beta words</p>")
    # Version 1 stored A three times (read at three times), B once.
    stored = [
        row(3, a, published=NOW - timedelta(hours=1)),
        row(1, a, published=NOW - timedelta(hours=3)),
        row(2, b, published=NOW - timedelta(hours=3)),
        row(5, a, published=NOW - timedelta(hours=2)),
    ]
    plan = adopt_guids([b, a], stored)
    assert sorted(plan.renames) == [(1, a.guid), (2, b.guid)]
    assert sorted(plan.gone) == [3, 5]


def test_whitespace_in_the_stored_text_does_not_hide_a_match() -> None:
    a = id_less(title="A", content_html="<p>Alpha words</p>")
    old = GuidRow(4, v1_guid("A", NOW, "Alpha\n\nwords"), "A", "Alpha\n\nwords", NOW)
    assert adopt_guids([a], [old]).renames == ((4, a.guid),)


def test_when_the_new_guid_is_stored_already_old_rows_are_only_hidden() -> None:
    a = id_less(title="A", content_html="<p>Alpha words</p>")
    stored = [row(1, a), GuidRow(2, a.guid, a.title, a.text, a.published)]
    plan = adopt_guids([a], stored)
    assert plan.renames == () and plan.gone == (1,)


def test_own_guids_other_texts_and_derived_rows_are_left_alone() -> None:
    a = id_less(title="A", content_html="<p>Alpha words</p>")
    own = GuidRow(1, "post-17", a.title, a.text, a.published)  # the feed's own id
    edited = GuidRow(2, v1_guid("A", NOW, "Alpha, first draft"), "A", "Alpha, first draft", NOW)
    hexlike_own = GuidRow(3, "0123456789abcdef0123456789ABCDEF", "A", a.text, NOW)
    plan = adopt_guids([a], [own, edited, hexlike_own])
    assert plan.renames == () and plan.gone == ()
    # Entries with an id or a link of their own are not the upgrade's business.
    linked = normalize(raw_item(guid=None, title="A"), BASE, NOW)
    assert adopt_guids([linked], [row(9, linked)]) == adopt_guids([], [])


def test_items_alike_but_for_the_date_keep_their_own_rows() -> None:
    # A weekly notice with the same words, dated by the feed: version 1 gave
    # each week a row; each keeps its own.
    week1 = id_less(title="Notice", content_html="<p>Same words</p>", published=NOW - timedelta(7))
    week2 = id_less(title="Notice", content_html="<p>Same words</p>", published=NOW)
    assert week1.guid != week2.guid
    plan = adopt_guids([week2, week1], [row(1, week1), row(2, week2)])
    assert sorted(plan.renames) == [(1, week1.guid), (2, week2.guid)] and plan.gone == ()


def test_a_text_made_differently_since_is_known_by_its_fingerprint() -> None:
    # The old row's text came from an older HTML-to-text (other punctuation
    # and case); its fingerprint, which folds both, still names the item.
    words = ", ".join(f"alpha {n} words" for n in range(30)) + "."
    a = id_less(title="A", content_html=f"<p>{words}</p>")
    old_text = words.upper().replace(",", " -")
    fp, _ = text_identity(old_text)
    assert fp and fp == a.fingerprint and old_text != a.text
    old = GuidRow(7, v1_guid("A", NOW, old_text), "A", old_text, NOW, fp)
    assert adopt_guids([a], [old]).renames == ((7, a.guid),)
    other = GuidRow(8, v1_guid("A", NOW, "Other words"), "A", "Other words", NOW, "f" * 16)
    assert adopt_guids([a], [other]) == adopt_guids([], [])


def test_a_row_two_entries_could_claim_goes_to_neither_unless_its_date_says() -> None:
    # Same title and words, by two authors: both derived entries match the row.
    a = id_less(title="A", author="One", content_html="<p>Alpha words</p>")
    b = id_less(title="A", author="Two", content_html="<p>Alpha words</p>")
    assert a.guid != b.guid
    undated = row(1, a, published=NOW - timedelta(hours=2))
    assert adopt_guids([a, b], [undated]) == adopt_guids([], [])
    dated = row(2, b)  # b's own date: b's row
    plan = adopt_guids([a, b], [dated])
    assert plan.renames == ((2, b.guid),) and plan.gone == ()
