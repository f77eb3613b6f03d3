"""The URL policy for links shown to readers (urls.check_public_url), the
private-address rule for redirects, and the writers' view of entries
(render/entries.py: links through the policy again, one unwritable entry
left out and named)."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from aggregator.config import SiteConfig
from aggregator.digest import FeedHistory
from aggregator.model import (
    DigestEntry,
    Entry,
    FeedMeta,
    Page,
    RawItem,
    Source,
    SourceKind,
    StoredEntry,
)
from aggregator.normalize import feed_meta, normalize, refusals_warning, refused_links
from aggregator.render.atom import render_feed
from aggregator.render.entries import for_readers
from aggregator.render.jsonfeed import render_json_feed
from aggregator.render.pages import render_pages
from aggregator.render.rss import render_rss
from aggregator.urls import MAX_URL_LENGTH, check_public_url, is_private_address, public_url

BASE = "https://feed.example/blog/feed.xml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://example.org/a", "https://example.org/a"),
        ("http://example.org:8080/a?b=1#c", "http://example.org:8080/a?b=1#c"),
        ("/posts/1/", "https://feed.example/posts/1/"),
        ("2.html", "https://feed.example/blog/2.html"),
        ("//cdn.example/x.mp3", "https://cdn.example/x.mp3"),
        ("  https://example.org/a\n", "https://example.org/a"),
        ("https://exa\tmple.org/a\r\nb", "https://example.org/ab"),
        ("https://example.org/a b", "https://example.org/a%20b"),
        ('https://example.org/"><script>', "https://example.org/%22%3E%3Cscript%3E"),
        ("https://example.org/p\x03/", "https://example.org/p/"),
        ("HTTPS://Example.org/", "https://Example.org/"),
        ("https://bücher.example/straße", "https://bücher.example/straße"),
    ],
)
def test_links_kept_resolved_and_cleaned(raw: str, expected: str) -> None:
    assert check_public_url(raw, BASE).url == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("javascript:alert(document.domain)", "javascript: is not allowed"),
        ("  JaVaScRiPt:alert(1)", "javascript: is not allowed"),
        ("java\tscript:alert(1)", "javascript: is not allowed"),
        ("\x01javascript:alert(1)", "javascript: is not allowed"),
        ("java\x00script:alert(1)", "javascript: is not allowed"),
        ("vbscript:msgbox(1)", "vbscript: is not allowed"),
        ("data:text/html,<script>alert(1)</script>", "data: is not allowed"),
        ("mailto:someone@example.org", "mailto: is not allowed"),
        ("file:///etc/passwd", "file: is not allowed"),
        ("about:blank", "about: is not allowed"),
        ("ftp://example.org/x", "ftp: is not allowed"),
        ("http://example.org:99999/", "not a valid URL (Port out of range"),
        ("http://example.org:0/", "port 0"),
        ("http://example.org:x/", "not a valid URL"),
        ("http://[broken", "not a valid URL"),
        ("http:///path", "no valid host name"),
        ("http://exa mple.org/", "no valid host name"),
        ("https://example.org/" + "a" * MAX_URL_LENGTH, f"longer than {MAX_URL_LENGTH}"),
        ("https://example.org/" + "a" * (10 * MAX_URL_LENGTH), f"longer than {MAX_URL_LENGTH}"),
    ],
)
def test_links_refused_with_a_reason(raw: str, reason: str) -> None:
    check = check_public_url(raw, BASE)
    assert check.url is None
    assert check.reason is not None and reason in check.reason


def test_no_link_is_no_refusal() -> None:
    assert check_public_url(None, BASE) == check_public_url("  \t", BASE)
    assert check_public_url(None, BASE).reason is None


def test_a_relative_link_needs_a_web_base() -> None:
    assert public_url("/posts/1/") is None
    # a local feed file (tests, `feeds add ./feed.xml`) gives file: links: not shown
    assert public_url("/posts/1/", "file:///srv/feeds/feed.xml") is None
    assert public_url("https://example.org/a", "file:///srv/feeds/feed.xml") == (
        "https://example.org/a"
    )


#: what a browser would run or open that is not a web page
_BROWSER_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")


@given(st.text(max_size=60), st.sampled_from(["", BASE, "file:///tmp/f.xml"]))
def test_whatever_comes_in_a_kept_link_is_plain_http(raw: str, base: str) -> None:
    url = public_url(raw, base)
    if url is None:
        return
    # what a browser would see: WHATWG strips C0 and space at the ends and
    # removes tabs and newlines anywhere; nothing may be left to strip
    assert url == url.strip("".join(chr(c) for c in range(0x21)))
    assert not re.search(r"[\x00-\x20\x7f-\x9f\ud800-\udfff\ufffe\uffff\"<>`]", url)
    scheme = _BROWSER_SCHEME.match(url)
    assert scheme and scheme.group(1).lower() in ("http", "https")
    assert len(url) <= MAX_URL_LENGTH
    assert public_url(url) == url  # the writers' second pass keeps it as it is


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.8.9.10", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "fe80::1", "fc00::1", "fd12:3456::1", "0.0.0.0",
        "::", "100.64.0.1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "localhost",
    ],
)  # fmt: skip
def test_private_addresses(address: str) -> None:
    assert is_private_address(address)


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "172.32.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses(address: str) -> None:
    assert not is_private_address(address)


def raw_item(link: str | None, n: int = 1) -> RawItem:
    return RawItem(
        location=f"{BASE}#entry-{n}", guid=None, title=f"Item {n}", link=link,
        canonical_link=None, published=NOW, updated=None, author=None,
        content_html=f"<p>Body {n}</p>", summary=None,
    )  # fmt: skip


def test_normalize_drops_a_refused_link_and_keeps_the_identity() -> None:
    bad = normalize(raw_item("javascript:alert(1)"), BASE, NOW)
    assert bad.link == ""
    # the item is still known by what it said: its guid does not change with the policy
    assert bad.guid == "javascript:alert(1)"
    good = normalize(raw_item("/a/"), BASE, NOW)
    assert good.link == "https://feed.example/a/"


def test_a_feed_reports_its_refused_links_once() -> None:
    items = [raw_item("javascript:alert(1)", 1), raw_item("java\tscript:x", 2)]
    items += [raw_item("mailto:a@example.org", 3), raw_item("https://ok.example/", 4)]
    items += [raw_item(None, 5)]
    reasons = refused_links(items, BASE)
    assert len(reasons) == 3
    warning = refusals_warning(reasons)
    assert warning is not None
    assert warning.startswith("left out 3 links not shown to readers: ")
    assert "javascript: is not allowed (only http and https) (2x)" in warning
    assert "mailto: is not allowed" in warning
    assert refusals_warning([]) is None


def test_a_feed_link_passes_the_policy() -> None:
    meta, reason = feed_meta("urn:x", "Feed\x01 title", "javascript:alert(1)", BASE)
    assert meta == FeedMeta(id="urn:x", title="Feed title", link=None)
    assert reason is not None and "javascript:" in reason
    meta, reason = feed_meta(None, None, "/", BASE)
    assert meta.link == "https://feed.example/" and reason is None


# -- the writers ----------------------------------------------------------------------

SITE = SiteConfig(base_url="https://digest.example.org/")
FEED = Source(SourceKind.FEED, "https://feed.example/feed.xml", "A feed")


def digest_entry(n: int, link: str, **changes: object) -> DigestEntry:
    entry = Entry(
        guid=f"g{n}", title=f"Entry {n}", link=link, canonical_url=link,
        published=NOW, updated=NOW, author="", content_html=f"<p>Body {n}</p>",
        text=f"Body {n}", summary=None, tags=("t",), content_hash="h", fingerprint="f",
    )  # fmt: skip
    entry = replace(entry, **changes)  # type: ignore[arg-type]
    return DigestEntry(StoredEntry(n, FEED, entry, NOW), excerpt=f"Body {n}")


def test_writers_take_links_through_the_policy_again() -> None:
    # rows stored before the policy existed
    old = [digest_entry(1, " javascript:alert(1)"), digest_entry(2, "https://ok.example/2")]
    shown = for_readers(old)
    assert [d.stored.entry.link for d in shown] == ["", "https://ok.example/2"]
    assert shown[1] is old[1]  # nothing copied when nothing changes
    dirty = for_readers([digest_entry(3, "https://ok.example/3", title="A\x01B")])
    assert dirty[0].stored.entry.title == "A B"


def test_one_unwritable_entry_is_left_out_and_named() -> None:
    # Values the writers cannot take and do not clean (nothing the store gives
    # today: naive dates and lone surrogates cannot be stored): they stand for
    # whatever a future bug lets through.
    good = digest_entry(1, "https://ok.example/1")
    naive = digest_entry(2, "https://ok.example/2", published=datetime(2026, 11, 1))
    surrogate = digest_entry(3, "https://ok.example/3")
    bad_name = replace(FEED, name="bad \ud800 name")
    surrogate = replace(surrogate, stored=replace(surrogate.stored, source=bad_name))
    entries = (good, naive, surrogate)
    feeds = {FEED.key: FeedMeta(None, "A feed", "https://feed.example/")}

    atom = render_feed(FeedHistory(current=entries, archives=()), SITE, feeds)
    rss = render_rss(entries, SITE, feeds)
    jsonfeed = render_json_feed(entries, SITE)
    pages = render_pages([Page(1, 1, entries)], SITE)

    for rendered, path in ((atom, "feed.atom"), (rss, "rss.xml")):
        assert {f.location for f in rendered.failures} == {
            f"{FEED.key} (entry 'g2')",
            f"{FEED.key} (entry 'g3')",
        }
        assert all(f"left out of {path}" in f.reason for f in rendered.failures)
        doc = etree.fromstring(rendered.files[path])
        assert [str(t) for t in doc.itertext() if str(t).startswith("Entry ")] == ["Entry 1"]
    # JSON and HTML take a naive date; not a lone surrogate
    for rendered, path in ((jsonfeed, "feed.json"), (pages, "index.html")):
        assert [f.location for f in rendered.failures] == [f"{FEED.key} (entry 'g3')"]
        assert f"left out of {path}" in rendered.failures[0].reason
    titles = [i["title"] for i in json.loads(jsonfeed.files["feed.json"])["items"]]
    assert titles == ["Entry 1", "Entry 2"]
    page = lxml_html.document_fromstring(pages.files["index.html"])
    shown = [
        " ".join(map(str, h.itertext())) for h in page.iter() if h.get("class") == "entry-title"
    ]
    assert shown == ["Entry 1", "Entry 2"]
