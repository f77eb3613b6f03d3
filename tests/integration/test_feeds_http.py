"""Fetching and parsing feeds from a real local HTTP server."""

from __future__ import annotations

import pytest
from pytest_httpserver import HTTPServer

from aggregator.errors import SourceError
from aggregator.sources.feeds import USER_AGENT, fetch, parse

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Local</title><id>urn:x</id><updated>2026-11-01T00:00:00Z</updated>
  <link href="/"/>
  <entry><id>urn:e1</id><title>One</title><link href="/posts/one/"/>
    <updated>2026-11-01T00:00:00Z</updated>
    <content type="html">&lt;p&gt;Hi &lt;a href="rel/"&gt;x&lt;/a&gt;&lt;/p&gt;</content></entry>
</feed>"""


def test_fetch_sends_user_agent_and_parses_with_relative_links(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed.atom", headers={"User-Agent": USER_AGENT}).respond_with_data(
        ATOM, content_type="application/atom+xml"
    )
    parsed = parse(fetch(httpserver.url_for("/feed.atom")))
    (item,) = parsed.items
    assert item.guid == "urn:e1"
    assert item.link == httpserver.url_for("/posts/one/")
    assert httpserver.url_for("/rel/") in item.content_html


def test_http_error_names_the_url(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/gone").respond_with_data("", status=404)
    url = httpserver.url_for("/gone")
    with pytest.raises(SourceError) as err:
        fetch(url)
    assert err.value.location == url
    assert "404" in err.value.reason


def test_html_page_is_not_a_feed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/page").respond_with_data(
        "<html><body><p>hello</p></body></html>", content_type="text/html"
    )
    with pytest.raises(SourceError, match="not a feed"):
        parse(fetch(httpserver.url_for("/page")))


def test_connection_refused_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="fetch failed"):
        fetch("http://127.0.0.1:9/feed")
