"""Issues: key, window, subject and size fitting; the text part's wrapping. Pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.newsletter import issues
from aggregator.render.email import TEXT_WIDTH, wrap
from tests.factories import source, stored

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("now", "tz", "key"),
    [
        (datetime(2026, 11, 22, 12, 0, tzinfo=UTC), SHANGHAI, "2026-W47"),
        # Sunday 20:00 UTC is already Monday in Shanghai: next week's issue.
        (datetime(2026, 11, 22, 20, 0, tzinfo=UTC), SHANGHAI, "2026-W48"),
        (datetime(2026, 11, 22, 20, 0, tzinfo=UTC), ZoneInfo("UTC"), "2026-W47"),
        # ISO years: 2027-01-01 is a Friday, in the last week of 2026.
        (datetime(2027, 1, 1, 9, 0, tzinfo=UTC), SHANGHAI, "2026-W53"),
        (datetime(2025, 12, 29, 9, 0, tzinfo=UTC), SHANGHAI, "2026-W01"),
    ],
)
def test_issue_key_is_the_iso_week_in_the_site_timezone(
    now: datetime, tz: ZoneInfo, key: str
) -> None:
    assert issues.issue_key(now, tz) == key
    assert issues.valid_key(key)


@pytest.mark.parametrize("bad", ["2026-W54", "2026-W00", "../etc", "2026-W4", "2026W47"])
def test_invalid_keys_are_refused(bad: str) -> None:
    assert not issues.valid_key(bad)


T = datetime(2026, 11, 20, tzinfo=UTC)


def at(id: int, first_seen: datetime, published: datetime) -> object:
    s = stored(id=id, src=source(), guid=f"g{id}", published=published)
    return type(s)(id=s.id, source=s.source, entry=s.entry, first_seen=first_seen)


def test_window_holds_entries_first_seen_since_the_last_cutoff_and_not_too_old() -> None:
    week = timedelta(days=7)
    entries = [
        at(1, T - timedelta(days=10), T - timedelta(days=10)),  # in the previous issue
        at(2, T - timedelta(days=3), T - timedelta(days=3)),  # new this week
        at(3, T - timedelta(days=2), T - timedelta(days=400)),  # a back catalogue entry
        at(4, T - timedelta(days=1), T - timedelta(days=13)),  # old post, fetched late: kept
        at(5, T + timedelta(hours=1), T),  # after the cut-off: next issue
    ]
    chosen = issues.window(entries, T - week, T, timedelta(days=14))  # type: ignore[arg-type]
    assert [s.id for s in chosen] == [2, 4]
    first = issues.window(entries, None, T, timedelta(days=14))  # type: ignore[arg-type]
    assert [s.id for s in first] == [1, 2, 4]


def test_consecutive_windows_neither_lose_nor_repeat() -> None:
    entries = [at(i, T + timedelta(hours=5 * i), T + timedelta(hours=5 * i)) for i in range(100)]
    cutoffs = [T + timedelta(days=d) for d in (0, 3, 10, 11, 30)]  # one week skipped
    seen: list[int] = []
    previous = None
    for cutoff in cutoffs:
        seen += [s.id for s in issues.window(entries, previous, cutoff, timedelta(days=30))]  # type: ignore[arg-type]
        previous = cutoff
    assert sorted(seen) == list(range(100)) and len(seen) == len(set(seen))


@pytest.mark.parametrize(
    "evil",
    ["a\r\nBcc: x@y", "a\nb", "a\rb", "a\x00b", "a\x85b", "a\u2028b", "a\u2029b", "a\tb", "a\x7fb"],
)
def test_subject_is_always_one_header_line(evil: str) -> None:
    subject = issues.subject("{title}: {count} new posts, {issue}", title=evil, count=3, issue="K")
    assert subject.startswith("a") and subject.endswith(": 3 new posts, K")
    assert all(ch.isprintable() for ch in subject)


def test_subject_template_leaves_unknown_fields_as_written() -> None:
    assert issues.subject("{title} {oops}", title="T", count=1, issue="K") == "T {oops}"


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=5000), min_size=0, max_size=300),
    base=st.integers(min_value=0, max_value=3000),
    limit=st.integers(min_value=0, max_value=200_000),
)
def test_fit_finds_the_largest_prefix_that_fits(sizes: list[int], base: int, limit: int) -> None:
    def measure(n: int) -> int:
        return base + sum(sizes[:n]) + (50 if n < len(sizes) else 0)

    n = issues.fit(len(sizes), measure, limit)
    assert 0 <= n <= len(sizes)
    if n > 0:
        assert measure(n) <= limit
    if n < len(sizes):
        assert measure(n + 1) > limit


def display_width(line: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


def test_wrap_fits_72_columns_counting_cjk_as_two_and_keeps_urls_whole() -> None:
    url = "https://example.org/" + "a" * 90
    text = (
        ("今天早上出门，发现楼下那排银杏一夜之间掉光了叶子。" * 6)
        + f" see {url} and "
        + ("the quick brown fox " * 10)
    )
    out = wrap(text, "   ")
    lines = out.splitlines()
    assert "   " + url in lines
    for line in lines:
        assert line.startswith("   ")
        assert display_width(line) <= TEXT_WIDTH or line.strip() == url
        assert not line.strip().startswith(("，", "。"))  # no line opens with closing punctuation
    assert "".join(line.strip() for line in lines).replace(" ", "") == text.replace(" ", "")


@given(st.text(alphabet=st.sampled_from("ab 数学\\()_^，。x-"), max_size=400))
def test_wrap_keeps_every_character(text: str) -> None:
    out = wrap(text)
    assert out.replace("\n", "").replace(" ", "") == text.replace(" ", "")
    for line in out.splitlines():
        assert display_width(line) <= TEXT_WIDTH or " " not in line.strip()
