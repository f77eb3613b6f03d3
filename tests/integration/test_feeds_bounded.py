"""Bounded work and XML-safe text, from a real local server to every output.

One feed item or post with a control character in a link, HTML nested
200,000 deep, 100,000 entries, a reference to a surrogate, a title of
megabytes: each costs at most itself, reads in bounded time, in this
process as in the parser workers, and every output is still written.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html import escape
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator import pipeline
from aggregator.config import Config
from aggregator.model import IngestReport
from tests.integration.feedkit import atom, feed_result, ingest, make_config, opened, titles

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
#: what XML 1.0 cannot carry (lxml refuses a string with one), and what HTML
#: reads as an error (DEL, C1 controls, noncharacters)
NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufdcf\ufdf0-\ufffd\U00010000-\U0010ffff]")
OUTPUTS = ("feed.atom", "rss.xml", "feed.json", "index.html", "email.html", "email.txt")


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    """A threaded server: the parser workers fetch several feeds at once."""
    s = HTTPServer(host="127.0.0.1", threaded=True)
    s.start()
    try:
        yield s
    finally:
        s.clear()
        s.stop()


def serve(server: HTTPServer, hostile: str, workers: int) -> list[str]:
    """The hostile feed, plus three ordinary ones when the test runs in the
    parser workers (four feeds or more are read there)."""
    server.expect_request("/hostile").respond_with_data(hostile, content_type="application/rss+xml")
    urls = [server.url_for("/hostile")]
    for i in range(3 if workers else 0):
        server.expect_request(f"/ok{i}").respond_with_data(atom(1, prefix=f"ok{i}-"))
        urls.append(server.url_for(f"/ok{i}"))
    return urls


def rss(*items: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>H</title>'
        "<link>https://h.example/</link>" + "".join(items) + "</channel></rss>"
    )


def item(i: int, description: str = "<p>Fine.</p>", title: str = "", *, cdata: bool = True) -> str:
    """An RSS item; its HTML in CDATA, or escaped (then the sanitizer meets
    its character references, the XML parser does not)."""
    html = f"<![CDATA[{description}]]>" if cdata else escape(description)
    return (
        f"<item><title>{title or f'Item {i}'}</title><link>https://h.example/{i}</link>"
        f"<guid>h{i}</guid><pubDate>Mon, 16 Nov 2026 0{i % 10}:00:00 GMT</pubDate>"
        f"<description>{html}</description></item>"
    )


def build_everything(config: Config) -> dict[str, str]:
    """Build, and every output the reader gets, by name, checked for XML characters."""
    with opened(config) as store:
        build = pipeline.build(config, store, NOW)
    assert build.failures == ()
    out = {}
    for name in OUTPUTS:
        text = (config.output.dir / name).read_text(encoding="utf-8")
        assert not NOT_XML.search(text), name
        out[name] = text
    return out


def ordinary_feeds_stored(report: IngestReport, urls: list[str]) -> None:
    assert [feed_result(report, u).new for u in urls[1:]] == [1] * (len(urls) - 1)


# -- control characters and surrogates ----------------------------------------


@pytest.mark.parametrize("workers", [0, 2])
def test_a_control_character_inside_an_href_poisons_no_build(
    server: HTTPServer, tmp_path: Path, workers: int
) -> None:
    # From the big list of naughty strings: once stored with the control
    # character inside its resolved href, the entry stopped every build.
    html = (
        '<p>See <a href="a&#1;b">this</a>, <img src="&#x1f;i.png" alt="x&#2;y"> and'
        ' <a href="java&#1;script:alert(1)">that</a>&#11;.</p>'
    )
    hostile = rss(
        item(1, html, cdata=False),
        item(2, html.replace("See", "And"), title="Ti&#1;tle &#xd800; with &#x110000; refs"),
        item(3),
    )
    urls = serve(server, hostile, workers)
    config = make_config(tmp_path, urls, parse_workers=workers)
    report = ingest(config, NOW)
    assert report.failures == ()
    assert feed_result(report, urls[0]).new == 3
    ordinary_feeds_stored(report, urls)
    assert "Ti tle \ufffd with \ufffd refs" in titles(config, NOW)
    out = build_everything(config)
    base = server.url_for("/")
    # Escaped HTML: the sanitizer percent-encodes the control character where
    # a browser would; the link still leads where it led, and
    # "java%01script:" stays a relative path.
    atom = out["feed.atom"]
    assert f'See &lt;a href="{base}a%01b"' in atom
    assert f'&lt;img src="{base}%1Fi.png" alt="x y"&gt;' in atom
    assert f'&lt;a href="{base}java%01script:alert(1)"' in atom
    # In CDATA the XML parser meets the references first: a space.
    assert f'And &lt;a href="{base}a b"' in atom
    assert "javascript:" not in atom


def test_a_reference_to_a_surrogate_loses_nothing(server: HTTPServer, tmp_path: Path) -> None:
    # It made feedparser's loose parser raise, and the whole feed was lost
    # with an internal-error traceback.
    hostile = rss(item(1, "<p>a &#xd800; b</p>", title="Half &#xd800; a pair"), item(2)) + "<"
    urls = serve(server, hostile, 0)
    config = make_config(tmp_path, urls)
    report = ingest(config, NOW)
    assert report.failures == ()
    assert feed_result(report, urls[0]).new == 2
    assert sorted(titles(config, NOW)) == ["Half \ufffd a pair", "Item 2"]
    build_everything(config)


# -- bounded work ----------------------------------------------------------------


def divs(depth: int) -> str:
    return "<p>Above the divs.</p>" + "<div>" * depth + "deep" + "</div>" * depth


@pytest.mark.parametrize("workers", [0, 2])
def test_200000_nested_divs_ingest_in_seconds(
    server: HTTPServer, tmp_path: Path, workers: int
) -> None:
    # 2.2 MB: the sanitizer took minutes on it (quadratic in nesting), in
    # the workers too, and parse_timeout did not cover sanitizing.
    hostile = rss(item(1), item(2, divs(200_000)), item(3))
    assert len(hostile) > 2_200_000
    urls = serve(server, hostile, workers)
    config = make_config(tmp_path, urls, parse_workers=workers, max_bytes=4 * 1024 * 1024)
    started = time.monotonic()
    report = ingest(config, NOW)
    assert time.monotonic() - started < 30
    assert report.failures == ()
    result = feed_result(report, urls[0])
    assert result.new == 3
    ordinary_feeds_stored(report, urls)
    # What was cut is said, once, for the feed.
    (warning,) = [w for w in result.warnings if "nested" in w.reason]
    assert warning.reason.startswith("entry-2: HTML nested over 250 levels deep")
    with opened(config) as store:
        (deep,) = [s.entry for s in store.visible_entries(NOW) if s.entry.title == "Item 2"]
    assert deep.text.startswith("Above the divs.")
    assert len(deep.content_html) < 10_000
    build_everything(config)


@pytest.mark.parametrize("workers", [0, 2])
def test_parse_timeout_covers_normalizing_and_keeps_what_was_done(
    server: HTTPServer, tmp_path: Path, workers: int
) -> None:
    # 100 entries of 200 kB: about a tenth of a second each to sanitize and
    # normalize, well past a 2 s parse_timeout; parsing them takes a fraction.
    hostile = rss(*(item(i, "<p>x y</p>" * 20_000) for i in range(100)))
    urls = serve(server, hostile, workers)
    config = make_config(
        tmp_path, urls, parse_workers=workers, parse_timeout=2, max_bytes=32 * 1024 * 1024
    )
    started = time.monotonic()
    report = ingest(config, NOW)
    assert time.monotonic() - started < 30
    result = feed_result(report, urls[0])
    assert result.failures == ()
    assert 0 < result.new < 100
    (warning,) = [w for w in result.warnings if "took longer" in w.reason]
    assert f"reading took longer than 2 s: kept the first {result.new} of 100 entries" in (
        warning.reason
    )
    ordinary_feeds_stored(report, urls)


def test_a_feed_of_100000_entries_keeps_its_first_max_entries(
    server: HTTPServer, tmp_path: Path
) -> None:
    # 8.7 MB: it was dropped whole at the 20 s parse_timeout; now reading
    # stops at the entry after the last one kept.
    hostile = rss(
        *(
            f"<item><title>Item {i}</title><link>https://h.example/{i}</link><guid>h{i}</guid>"
            "</item>"
            for i in range(100_000)
        )
    )
    assert len(hostile) > 8_500_000
    urls = serve(server, hostile, 0)
    config = make_config(tmp_path, urls, max_entries=1000, parse_timeout=20)
    started = time.monotonic()
    report = ingest(config, NOW)
    assert time.monotonic() - started < 30
    result = feed_result(report, urls[0])
    assert result.failures == ()
    assert result.new == 1000
    assert set(titles(config, NOW)) == {f"Item {i}" for i in range(1000)}
    (warning,) = [w for w in result.warnings if "max_entries" in w.reason]
    assert "kept the first 1000 entries; the feed has more" in warning.reason


def test_a_title_of_9_mb_without_a_space_builds_the_email_in_seconds(
    server: HTTPServer, tmp_path: Path
) -> None:
    # The email's text wrapping was quadratic: a 60 kB title took 15 s, a
    # 9 MB one never ended, on every build after it was stored.
    hostile = rss(item(1, title="T" * 9_000_000), item(2), item(3))
    urls = serve(server, hostile, 0)
    config = make_config(tmp_path, urls, max_bytes=16 * 1024 * 1024)
    assert feed_result(ingest(config, NOW), urls[0]).new == 3
    started = time.monotonic()
    out = build_everything(config)
    assert time.monotonic() - started < 10
    assert "T" * 9_000_000 in out["feed.atom"]
    assert "Item 2" in out["email.txt"]


# -- the content directory -------------------------------------------------------


def test_hostile_markup_in_a_post_costs_only_what_it_cut(tmp_path: Path) -> None:
    # The control character in an href crashed ingest (lxml refused to set
    # the resolved link); nested 3,000 deep, a post lost its tail unsaid.
    config = make_config(tmp_path, [])
    posts = {
        "control.md": 'See <a href="a&#1;b">this</a> and &#xd800; and \x01 here.\n',
        "deep.md": "Before [a link](x.html).\n\n" + divs(3000) + "\n\nAfter.\n",
        "plain.md": "Fine post.\n",
    }
    for i, (name, body) in enumerate(posts.items()):
        (tmp_path / "content" / name).write_text(
            f"---\ntitle: {name}\ndate: 2026-11-1{6 + i}\n---\n{body}", encoding="utf-8"
        )
    report = ingest(config, NOW)
    assert report.failures == ()
    (content,) = [r for r in report.results if r.source.key == config.content_source.key]
    assert content.new == 3
    (warning,) = content.warnings
    assert warning.location.endswith("deep.md")
    assert "nested over 250 levels deep: what follows that point was dropped" in warning.reason
    out = build_everything(config)
    # Resolved against the post's permalink, the character percent-encoded.
    assert re.search(
        r'See &lt;a href="https://digest\.example\.org/\S*control/a%01b"', out["feed.atom"]
    )
