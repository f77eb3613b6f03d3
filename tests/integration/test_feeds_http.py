"""Fetching feeds over HTTP from a real local server: politeness, HTTP semantics, schedule."""

from __future__ import annotations

import gzip
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator.errors import SourceError
from aggregator.sources.feeds import USER_AGENT, fetch, find_feed, parse
from aggregator.sources.fetch import FetchSettings
from aggregator.sources.parse import ParseSettings
from tests.integration.feedkit import (
    atom,
    feed_result,
    ingest,
    make_config,
    opened,
    rss,
    state,
    titles,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
#: for the one-URL helpers (find_feed, fetch, parse), which take them from the caller
FETCH = FetchSettings(
    concurrency=4, per_host=2, connect_timeout=5.0, read_timeout=10.0, total_timeout=20.0,
    max_bytes=1024 * 1024, allow_private_redirects=False,
)  # fmt: skip
PARSE = ParseSettings(timeout=20.0, max_entries=1000)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def test_user_agent_gzip_and_relative_links(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request(
        "/feed.atom", headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"}
    ).respond_with_data(
        gzip.compress(atom(1).encode()),
        headers={"Content-Encoding": "gzip"},
        content_type="application/atom+xml",
    )
    url = httpserver.url_for("/feed.atom")
    config = make_config(tmp_path, [url])
    report = ingest(config, NOW)
    assert report.failures == ()
    assert feed_result(report, url).new == 1
    with opened(config) as store:
        (e,) = store.visible_entries(NOW)
    assert e.entry.link == httpserver.url_for("/posts/e0/")
    # relative to the feed's URL (its xml:base), not the entry's link
    assert f'href="{httpserver.url_for("/rel/0")}"' in e.entry.content_html
    assert "aggregator/" in USER_AGENT and "https://" in USER_AGENT


def test_conditional_get_and_304_cost_no_parse(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = httpserver.url_for("/feed.atom")
    httpserver.expect_ordered_request("/feed.atom").respond_with_data(
        atom(2),
        headers={"ETag": '"v1"', "Last-Modified": "Sat, 21 Nov 2026 10:00:00 GMT"},
        content_type="application/atom+xml",
    )
    httpserver.expect_ordered_request(
        "/feed.atom",
        headers={"If-None-Match": '"v1"', "If-Modified-Since": "Sat, 21 Nov 2026 10:00:00 GMT"},
    ).respond_with_data("", status=304)
    config = make_config(tmp_path, [url])
    assert feed_result(ingest(config, NOW), url).new == 2
    second = feed_result(ingest(config, NOW, all_feeds=True), url)
    assert second.fetch == "not modified" and second.ok
    httpserver.check_assertions()
    assert state(config, url).etag == '"v1"'


def test_same_body_again_is_not_parsed(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = httpserver.url_for("/feed.atom")
    httpserver.expect_request("/feed.atom").respond_with_data(
        atom(2), content_type="application/atom+xml"
    )
    config = make_config(tmp_path, [url])
    ingest(config, NOW)
    again = feed_result(ingest(config, NOW, all_feeds=True), url)
    assert again.fetch == "unchanged" and again.items == 0 and again.ok


def test_feed_not_due_is_not_fetched(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = httpserver.url_for("/feed.atom")
    httpserver.expect_request("/feed.atom").respond_with_data(atom(1))
    config = make_config(tmp_path, [url], min_interval_minutes=30)
    ingest(config, NOW)
    assert feed_result(ingest(config, NOW + timedelta(minutes=10)), url).fetch == "not due"
    assert len(httpserver.log) == 1
    # due again after the interval (less a little grace for cron's timing)
    assert feed_result(ingest(config, NOW + timedelta(minutes=29)), url).fetch == "unchanged"
    assert len(httpserver.log) == 2


@pytest.mark.parametrize(
    ("extra", "headers", "expected"),
    [
        ("<ttl>180</ttl>", {}, timedelta(hours=3)),
        (
            "<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>4</sy:updateFrequency>",
            {},
            timedelta(hours=6),
        ),
        ("", {"Cache-Control": "public, max-age=7200"}, timedelta(hours=2)),
        ("<ttl>5</ttl>", {}, timedelta(minutes=30)),  # below the minimum: the minimum
        ("<ttl>100000</ttl>", {}, timedelta(hours=24)),  # above the maximum: the maximum
    ],
)
def test_schedule_follows_the_feeds_hints_within_bounds(
    httpserver: HTTPServer,
    tmp_path: Path,
    extra: str,
    headers: dict[str, str],
    expected: timedelta,
) -> None:
    url = httpserver.url_for("/rss")
    httpserver.expect_request("/rss").respond_with_data(
        rss(1, channel_extra=extra), headers=headers, content_type="application/rss+xml"
    )
    config = make_config(tmp_path, [url], min_interval_minutes=30, max_interval_minutes=1440)
    ingest(config, NOW)
    assert state(config, url).next_fetch == NOW + expected


def test_a_304_keeps_following_the_servers_cache_control(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    url = httpserver.url_for("/feed.atom")
    hint = {"ETag": '"v1"', "Cache-Control": "max-age=7200"}
    httpserver.expect_ordered_request("/feed.atom").respond_with_data(
        atom(1), headers=hint, content_type="application/atom+xml"
    )
    httpserver.expect_ordered_request("/feed.atom").respond_with_data("", status=304, headers=hint)
    config = make_config(tmp_path, [url], min_interval_minutes=30)
    ingest(config, NOW)
    later = NOW + timedelta(hours=2)
    assert feed_result(ingest(config, later), url).fetch == "not modified"
    assert state(config, url).next_fetch == later + timedelta(hours=2)


def test_permanent_redirect_moves_the_feed(httpserver: HTTPServer, tmp_path: Path) -> None:
    old, new = httpserver.url_for("/old"), httpserver.url_for("/new")
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data(atom(1))
    config = make_config(tmp_path, [old])
    assert feed_result(ingest(config, NOW), old).new == 1
    assert state(config, old).moved_to == new
    ingest(config, NOW, all_feeds=True)
    assert [r.path for r, _ in httpserver.log] == ["/old", "/new", "/new"]
    with opened(config) as store:
        (s,) = [s for s in store.source_statuses(config.feed_sources)]
    assert s.moved_to == new


def test_temporary_redirect_keeps_the_url(httpserver: HTTPServer, tmp_path: Path) -> None:
    old = httpserver.url_for("/old")
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data(atom(1))
    config = make_config(tmp_path, [old])
    assert feed_result(ingest(config, NOW), old).new == 1
    assert state(config, old).moved_to is None


def test_redirect_loop_and_too_many_redirects(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/a").respond_with_data("", status=302, headers={"Location": "/b"})
    httpserver.expect_request("/b").respond_with_data("", status=302, headers={"Location": "/a"})
    for i in range(7):
        httpserver.expect_request(f"/r{i}").respond_with_data(
            "", status=301, headers={"Location": f"/r{i + 1}"}
        )
    loop, chain = httpserver.url_for("/a"), httpserver.url_for("/r0")
    config = make_config(tmp_path, [loop, chain])
    report = ingest(config, NOW)
    assert "redirect loop" in feed_result(report, loop).failures[0].reason
    assert "too many redirects" in feed_result(report, chain).failures[0].reason
    assert len([r for r, _ in httpserver.log if r.path.startswith("/r")]) == 6


def test_gone_disables_the_feed(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = httpserver.url_for("/gone")
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    config = make_config(tmp_path, [url])
    first = feed_result(ingest(config, NOW), url)
    assert "410" in first.failures[0].reason
    assert "410" in (state(config, url).disabled_reason or "")
    later = feed_result(ingest(config, NOW + timedelta(days=3), all_feeds=True), url)
    assert later.fetch == "disabled" and later.ok
    assert len(httpserver.log) == 1


def test_errors_back_off_exponentially_and_reset(httpserver: HTTPServer, tmp_path: Path) -> None:
    url = httpserver.url_for("/flaky")
    httpserver.expect_ordered_request("/flaky").respond_with_data("", status=404)
    httpserver.expect_ordered_request("/flaky").respond_with_data("", status=500)
    httpserver.expect_ordered_request("/flaky").respond_with_data(atom(1))
    config = make_config(tmp_path, [url], min_interval_minutes=30, backoff_cap_minutes=600)
    r1 = feed_result(ingest(config, NOW), url)
    assert "404" in r1.failures[0].reason
    assert state(config, url).next_fetch == NOW + timedelta(minutes=30)
    t2 = NOW + timedelta(minutes=30)
    r2 = feed_result(ingest(config, t2), url)
    assert "500" in r2.failures[0].reason and "2 failures in a row" in r2.failures[0].reason
    assert state(config, url).next_fetch == t2 + timedelta(minutes=60)
    t3 = t2 + timedelta(minutes=60)
    assert feed_result(ingest(config, t3), url).new == 1
    s = state(config, url)
    assert s.consecutive_errors == 0 and s.next_fetch == t3 + timedelta(minutes=30)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(httpserver: HTTPServer, tmp_path: Path, status: int) -> None:
    url = httpserver.url_for("/busy")
    httpserver.expect_request("/busy").respond_with_data(
        "", status=status, headers={"Retry-After": "7200"}
    )
    config = make_config(tmp_path, [url], min_interval_minutes=30)
    assert str(status) in feed_result(ingest(config, NOW), url).failures[0].reason
    assert state(config, url).next_fetch == NOW + timedelta(hours=2)


def test_html_page_names_the_feed_it_links(httpserver: HTTPServer, tmp_path: Path) -> None:
    page = (
        '<!doctype html><html><head><link rel="alternate" type="application/rss+xml" '
        'href="/feed.xml"></head><body><p>hello</p></body></html>'
    )
    httpserver.expect_request("/blog").respond_with_data(page, content_type="text/html")
    httpserver.expect_request("/plain").respond_with_data(
        "<html><body>hi</body></html>", content_type="text/html"
    )
    blog, plain = httpserver.url_for("/blog"), httpserver.url_for("/plain")
    config = make_config(tmp_path, [blog, plain])
    report = ingest(config, NOW)
    reason = feed_result(report, blog).failures[0].reason
    assert "HTML page" in reason and httpserver.url_for("/feed.xml") in reason
    assert "links no feed" in feed_result(report, plain).failures[0].reason


def test_find_feed_discovers_from_a_page(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/blog").respond_with_data(
        '<html><head><link rel="alternate" type="application/atom+xml" href="feed.atom">'
        "</head></html>",
        content_type="text/html; charset=utf-8",
    )
    httpserver.expect_request("/feed.atom").respond_with_data(atom(1, title="Found"))
    url, parsed = find_feed(httpserver.url_for("/blog"), FETCH, PARSE)
    assert url == httpserver.url_for("/feed.atom") and parsed.title == "Found"


@pytest.mark.parametrize("codec", ["gb2312", "gbk", "big5"])
def test_declared_chinese_encodings_decode(
    httpserver: HTTPServer, tmp_path: Path, codec: str
) -> None:
    title = "中文標題" if codec == "big5" else "中文标题"
    body = (
        f'<?xml version="1.0" encoding="{codec}"?>\n<rss version="2.0"><channel><title>c</title>'
        f"<item><title>{title}</title><guid>g1</guid><description>正文</description></item>"
        "</channel></rss>"
    ).encode(codec)
    httpserver.expect_request("/zh").respond_with_data(body, content_type="application/rss+xml")
    config = make_config(tmp_path, [httpserver.url_for("/zh")])
    assert ingest(config, NOW).failures == ()
    assert titles(config, NOW) == [title]


def test_bozo_feed_keeps_what_parsed_with_a_warning(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = atom(2).replace("</feed>", "<entry><id>urn:x</id><title>Half & broken</title>")
    httpserver.expect_request("/bozo").respond_with_data(broken)
    url = httpserver.url_for("/bozo")
    config = make_config(tmp_path, [url])
    with caplog.at_level(logging.WARNING):
        report = ingest(config, NOW)
    assert feed_result(report, url).new >= 2
    assert any("malformed feed" in r.getMessage() and url in r.getMessage() for r in caplog.records)


def test_many_feeds_fetch_and_parse_in_worker_processes(tmp_path: Path) -> None:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        urls = []
        for i in range(12):
            server.expect_request(f"/f{i}").respond_with_data(atom(3, prefix=f"f{i}-"))
            urls.append(server.url_for(f"/f{i}"))
        config = make_config(tmp_path, urls, concurrency=4, per_host=4, parse_workers=2)
        report = ingest(config, NOW)
    finally:
        server.stop()
    assert report.failures == ()
    assert len(titles(config, NOW)) == 36


def test_feed_errors_name_the_url_one_at_a_time(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/nope").respond_with_data("", status=404)
    url = httpserver.url_for("/nope")
    with pytest.raises(SourceError) as err:
        fetch(url, FETCH)
    assert err.value.location == url and "404" in err.value.reason
    with pytest.raises(SourceError, match="cannot connect"):
        fetch("http://127.0.0.1:9/feed", FETCH)
    httpserver.expect_request("/ok").respond_with_data(atom(1))
    assert len(parse(fetch(httpserver.url_for("/ok"), FETCH), PARSE).items) == 1
