"""Hostile and broken responses from a real local server: each is contained to its feed."""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import pipeline
from aggregator.config import Config
from tests.integration.feedkit import atom, feed_result, ingest, make_config, opened, titles

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def all_stored(config: Config, now: datetime) -> str:
    with opened(config) as store:
        return " ".join(
            f"{s.entry.title} {s.entry.content_html} {s.entry.text}"
            for s in store.visible_entries(now)
        )


LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>laughs</title>
<item><title>Laugh &lol9;</title><guid>g1</guid><description>x &lol9;</description></item>
</channel></rss>"""


def test_billion_laughs_is_not_expanded(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/lol").respond_with_data(LAUGHS)
    config = make_config(tmp_path, [httpserver.url_for("/lol")], parse_timeout=10)
    report = ingest(config, NOW)
    # Either the entry is read without the entities or the feed is refused;
    # never a billion "lol"s in memory or in the store.
    assert "lollollol" not in all_stored(config, NOW)
    assert all("took longer" not in f.reason for f in report.failures)


def test_external_entity_never_reads_a_local_file(httpserver: HTTPServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>\n'
        '<rss version="2.0"><channel><title>x</title>'
        "<item><title>Leak &xxe;</title><guid>g1</guid><description>&xxe;</description></item>"
        "</channel></rss>"
    )
    httpserver.expect_request("/xxe").respond_with_data(body)
    config = make_config(tmp_path, [httpserver.url_for("/xxe")])
    ingest(config, NOW)
    assert "TOP-SECRET" not in all_stored(config, NOW)


def test_gzip_bomb_stops_at_the_size_cap(httpserver: HTTPServer, tmp_path: Path) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * (200 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 250 * 1024
    httpserver.expect_request("/bomb").respond_with_data(
        bomb, headers={"Content-Encoding": "gzip"}, content_type="application/rss+xml"
    )
    httpserver.expect_request("/fine").respond_with_data(atom(1))
    bomb_url, fine = httpserver.url_for("/bomb"), httpserver.url_for("/fine")
    config = make_config(tmp_path, [bomb_url, fine], max_bytes=1024 * 1024)
    report = ingest(config, NOW)
    assert "larger than 1048576 bytes" in feed_result(report, bomb_url).failures[0].reason
    assert feed_result(report, fine).new == 1


def test_body_over_the_cap_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    big = atom(1).replace("</feed>", "<!--" + "x" * (2 * 1024 * 1024) + "--></feed>")
    httpserver.expect_request("/big").respond_with_data(big)
    url = httpserver.url_for("/big")
    config = make_config(tmp_path, [url], max_bytes=1024 * 1024)
    assert "larger than" in feed_result(ingest(config, NOW), url).failures[0].reason


def drip(request: Request) -> Response:
    def chunks() -> Iterator[bytes]:
        yield b'<?xml version="1.0"?><rss version="2.0"><channel>'
        for _ in range(20):  # bounded: at most 4 s even if nobody hangs up
            time.sleep(0.2)
            yield b" "

    return Response(chunks(), content_type="application/rss+xml")


def test_dripping_response_is_cut_at_the_total_timeout(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/drip").respond_with_handler(drip)
    url = httpserver.url_for("/drip")
    config = make_config(tmp_path, [url], total_timeout=1, read_timeout=1)
    started = time.monotonic()
    report = ingest(config, NOW)
    assert "no complete response within 1 s" in feed_result(report, url).failures[0].reason
    assert time.monotonic() - started < 3.5


def test_invalid_utf8_still_yields_entries(httpserver: HTTPServer, tmp_path: Path) -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>Bad \xff\xfe bytes</title><guid>g1</guid>"
        b"<description>caf\xe9</description></item></channel></rss>"
    )
    httpserver.expect_request("/bad").respond_with_data(body, content_type="application/rss+xml")
    url = httpserver.url_for("/bad")
    config = make_config(tmp_path, [url])
    report = ingest(config, NOW)
    assert feed_result(report, url).new == 1
    (title,) = titles(config, NOW)
    assert title.startswith("Bad") and title.endswith("bytes")


def test_wrong_declared_encoding_still_yields_entries(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>标题</title><guid>g1</guid><description>正文</description></item>"
        "</channel></rss>"
    ).encode("gbk")
    httpserver.expect_request("/wrong").respond_with_data(
        body, content_type="application/rss+xml; charset=utf-8"
    )
    url = httpserver.url_for("/wrong")
    config = make_config(tmp_path, [url])
    assert feed_result(ingest(config, NOW), url).new == 1
    assert len(titles(config, NOW)) == 1


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("", "application/rss+xml", "empty response"),
        ('{"items": []}', "application/json", "not a feed: the response is application/json"),
        ("just some words", "text/plain", "not a feed"),
    ],
)
def test_empty_or_non_feed_200_is_reported(
    httpserver: HTTPServer, tmp_path: Path, body: str, content_type: str, message: str
) -> None:
    httpserver.expect_request("/x").respond_with_data(body, content_type=content_type)
    url = httpserver.url_for("/x")
    config = make_config(tmp_path, [url])
    (failure,) = feed_result(ingest(config, NOW), url).failures
    assert message in failure.reason and failure.location == url


def nested(depth: int) -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>deep</title><item>'
        "<title>t</title><guid>g</guid><description>"
        + "<x>" * depth
        + "</x>" * depth
        + "</description></item></channel></rss>"
    )


def test_deep_nesting_is_cut_by_the_parse_timeout_in_workers(tmp_path: Path) -> None:
    # Four feeds: parsed in worker processes, as a real ingest does.
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        server.expect_request("/deep").respond_with_data(nested(100_000))
        urls = [server.url_for("/deep")]
        for i in range(3):
            server.expect_request(f"/ok{i}").respond_with_data(atom(1, prefix=f"ok{i}-"))
            urls.append(server.url_for(f"/ok{i}"))
        config = make_config(tmp_path, urls, parse_timeout=0.5, parse_workers=2)
        report = ingest(config, NOW)
    finally:
        server.stop()
    assert "parsing took longer than 0.5 s" in feed_result(report, urls[0]).failures[0].reason
    assert [feed_result(report, u).new for u in urls[1:]] == [1, 1, 1]


def test_entries_beyond_the_cap_are_dropped(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/many").respond_with_data(atom(12))
    url = httpserver.url_for("/many")
    config = make_config(tmp_path, [url], max_entries=5)
    assert feed_result(ingest(config, NOW), url).new == 5


BROKEN_URLS = """<entry><id>urn:broken</id><title>Broken links</title>
<link href="http://[broken"/><link rel="canonical" href="http://[x/"/>
<link rel="enclosure" type="audio/mpeg" href="http://[y/a.mp3"/>
<updated>2026-11-09T00:00:00Z</updated>
<content type="html">&lt;p&gt;See &lt;a href="//[z/"&gt;this&lt;/a&gt; and
&lt;a href="http://[w/"&gt;that&lt;/a&gt;
&lt;img src="[v" alt="pic"&gt;&lt;/p&gt;</content></entry>"""


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("workers", [0, 2])
def test_urls_that_do_not_parse_cost_nothing_but_themselves(
    httpserver: HTTPServer, tmp_path: Path, workers: int
) -> None:
    # "http://[..." makes Python's URL parser raise: a link like that must not
    # lose the entry, let alone the feed.
    urls = []
    for i in range(4 if workers else 1):
        httpserver.expect_request(f"/b{i}").respond_with_data(
            atom(2, prefix=f"b{i}-", extra=BROKEN_URLS)
        )
        urls.append(httpserver.url_for(f"/b{i}"))
    config = make_config(tmp_path, urls, parse_workers=workers)
    report = ingest(config, NOW)
    assert report.failures == ()
    assert feed_result(report, urls[0]).new == 3
    assert "Broken links" in titles(config, NOW)


CONTROLS = """<entry><id>urn:ctl\x01</id><title>Con\x02trol \x1ccharacters</title>
<link href="https://c.example/p\x03/"/><author><name>An\x04on</name></author>
<category term="t\x05ag"/><updated>2026-11-09T00:00:00Z</updated>
<content type="html">\x1c&lt;p&gt;Bell\x07 and
&lt;b&gt;null\x0b&lt;/b&gt;.&lt;/p&gt;</content></entry>"""


def test_control_characters_never_reach_the_outputs(httpserver: HTTPServer, tmp_path: Path) -> None:
    # XML 1.0 cannot carry them, and lxml refuses a string that has one: they
    # must not cost the entry, the feed, or the build of every output.
    httpserver.expect_request("/ctl").respond_with_data(atom(1, extra=CONTROLS))
    url = httpserver.url_for("/ctl")
    config = make_config(tmp_path, [url])
    report = ingest(config, NOW)
    assert report.failures == ()
    assert feed_result(report, url).new == 2
    with opened(config) as store:
        build = pipeline.build(config, store, NOW)
    assert build.failures == ()
    feed = (config.output.dir / "feed.atom").read_text(encoding="utf-8")
    assert "Con trol characters" in feed
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", feed)
