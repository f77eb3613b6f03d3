"""Parsing feed bytes: what feedparser cannot take is replaced first, and the
work stops at max_entries and at the deadline."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from aggregator.errors import SourceError
from aggregator.sources.parse import Deadline, ParsedFeed, ParseSettings, ParseTimeout, parse

HEADERS = {"content-type": "application/rss+xml"}
URL = "https://h.example/feed"


def rss(*items: str, tail: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>H</title>'
        + "".join(items)
        + "</channel></rss>"
        + tail
    ).encode()


def item(i: int, title: str = "", description: str = "d") -> str:
    return (
        f"<item><title>{title or f'Item {i}'}</title><guid>g{i}</guid>"
        f"<description>{description}</description></item>"
    )


def read(body: bytes, timeout: float = 10, max_entries: int = 100) -> ParsedFeed:
    return parse(body, HEADERS, URL, ParseSettings(timeout=timeout, max_entries=max_entries))


@pytest.mark.parametrize("tail", ["", "<junk"], ids=["strict", "loose"])
@pytest.mark.parametrize(
    ("ref", "read_as"),
    [
        ("&#xd800;", "\ufffd"),  # feedparser's loose parser raised UnicodeEncodeError
        ("&#57343;", "\ufffd"),
        ("&#x110000;", "\ufffd"),  # chr() raised ValueError
        ("&#" + "9" * 5000 + ";", "\ufffd"),  # int() refuses 4,300 digits
        ("&#0;", "\ufffd"),
        ("&#1;", " "),
        ("&#xFFFE;", " "),
        ("&#xd800 ", "\ufffd "),  # no semicolon: the loose parser reads it all the same
    ],
)
def test_a_reference_to_what_xml_cannot_carry_is_replaced(
    ref: str, read_as: str, tail: str
) -> None:
    feed = read(rss(item(1, title=f"a{ref}b"), item(2), tail=tail))
    assert [i.title for i in feed.items] == [f"a{read_as}b", "Item 2"]


def test_raw_control_characters_leave_the_feed_well_formed() -> None:
    feed = read(rss(item(1, title="Con\x02trol\x1c"), item(2)))
    assert feed.warning is None  # read by the strict parser, not the loose one
    assert feed.items[0].title == "Con trol"


def test_a_utf16_feed_gets_the_same_replacement() -> None:
    body = rss(item(1, title="a&#xd800;b")).decode().replace("utf-8", "utf-16").encode("utf-16")
    assert [i.title for i in read(body).items] == ["a\ufffdb"]


@pytest.mark.parametrize("name", ["/dev/zero", "feed.xml"])
def test_a_body_naming_a_file_is_never_opened(name: str, tmp_path: Path) -> None:
    # feedparser.parse() opens a bytes argument as a file name first: a body
    # "/dev/zero" was read until memory ran out; a local feed would be published.
    local = tmp_path / "feed.xml"
    local.write_bytes(rss(item(1, title="Local secret")))
    body = name if name.startswith("/") else str(local)
    with pytest.raises(SourceError, match="not a feed"):
        read(body.encode(), timeout=5)


@pytest.mark.parametrize("tail", ["", "<junk"], ids=["strict", "loose"])
def test_reading_stops_at_the_entry_after_max_entries(tail: str) -> None:
    # 100,000 entries used to be read whole, past parse_timeout, and lost.
    body = rss(*(item(i) for i in range(100_000)), tail=tail)
    started = time.monotonic()
    feed = read(body, timeout=20, max_entries=1000)
    assert time.monotonic() - started < 10
    assert [i.title for i in feed.items] == [f"Item {i}" for i in range(1000)]
    assert feed.warning is not None
    assert "kept the first 1000 entries; the feed has more" in feed.warning
    assert "junk" not in feed.warning  # never read that far


def test_exactly_max_entries_is_no_warning() -> None:
    assert read(rss(*(item(i) for i in range(5))), max_entries=5).warning is None


NESTED = rss(item(1, description="<x>" * 100_000 + "</x>" * 100_000))


def test_the_deadline_stops_feedparser_in_a_thread_without_a_signal() -> None:
    # Only a main thread receives SIGALRM; the checks at each element do it here.
    errors: list[str] = []

    def run() -> None:
        try:
            read(NESTED, timeout=0.5)
        except SourceError as e:
            errors.append(e.reason)

    started = time.monotonic()
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert errors == ["parsing took longer than 0.5 s"]
    assert time.monotonic() - started < 10


def test_a_deadline_entered_again_keeps_the_outer_timer() -> None:
    outer = Deadline(30)
    with outer:
        remaining = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 0 < remaining <= 30
        read(rss(item(1)))  # its own Deadline finds the timer running: checks only
        with outer:  # parse(deadline=outer) enters it again
            pass
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
    assert signal.getitimer(signal.ITIMER_REAL)[0] == 0


def test_an_expired_deadline_raises_at_the_next_check_and_interrupts_inside() -> None:
    deadline = Deadline(0.2)
    with deadline:
        time.sleep(0.3)  # the timer fires outside an interruptible block: marked only
        with pytest.raises(ParseTimeout):
            deadline.check()
    deadline = Deadline(0.2)
    with deadline, pytest.raises(ParseTimeout), deadline.interruptible():
        for _ in range(200):  # bounded: 10 s if the timer never fired
            time.sleep(0.05)
