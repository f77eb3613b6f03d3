"""What a followed feed's entries say, through a real local server, store and build:
its rel="canonical" links fold copies into the original, and its inline images
survive sanitizing while other data: URLs do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html
from pytest_httpserver import HTTPServer

from aggregator import config as config_mod
from aggregator import pipeline
from aggregator.config import Config
from aggregator.store import Store
from tests.conftest import NOW

A = "{http://www.w3.org/2005/Atom}"
POST = "https://blog.example.org/posts/tiny-http-cache/"
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
SVG = "data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def follow(example: Path, url: str, name: str) -> Config:
    """The bundled example, also following the feed at `url`."""
    text = example.read_text(encoding="utf-8")
    feed = f'[[feeds]]\nurl = "{url}"\nname = "{name}"\n\n[fetch]'
    example.write_text(text.replace("[fetch]", feed, 1), encoding="utf-8")
    return config_mod.load(example)


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Mirror</title><id>urn:mirror</id><updated>2026-11-09T00:00:00Z</updated>
  <entry><id>urn:mirror:1</id><title>Reposted: a conditional-GET cache</title>
    <link rel="alternate" href="https://mirror.example.com/reposts/1041"/>
    <link rel="canonical" href="{canonical}"/>
    <updated>2026-11-08T00:00:00Z</updated>
    <content type="html">&lt;p&gt;Reposted with the author's leave.&lt;/p&gt;</content></entry>
  <entry><id>urn:mirror:2</id><title>Reposted: something else</title>
    <link rel="alternate" href="https://mirror.example.com/reposts/1042"/>
    <updated>2026-11-08T00:00:00Z</updated>
    <content type="html">&lt;p&gt;Reposted too, with no canonical link.&lt;/p&gt;</content></entry>
</feed>"""

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
  <title>Mirror</title><link>https://mirror.example.com/</link><description>d</description>
  <item><guid>urn:mirror:1</guid><title>Reposted: a conditional-GET cache</title>
    <link>https://mirror.example.com/reposts/1041</link>
    <atom:link rel="canonical" href="{canonical}"/>
    <pubDate>Sun, 08 Nov 2026 00:00:00 GMT</pubDate>
    <description>&lt;p&gt;Reposted with the author's leave.&lt;/p&gt;</description></item>
  <item><guid>urn:mirror:2</guid><title>Reposted: something else</title>
    <link>https://mirror.example.com/reposts/1042</link>
    <pubDate>Sun, 08 Nov 2026 00:00:00 GMT</pubDate>
    <description>&lt;p&gt;Reposted too, with no canonical link.&lt;/p&gt;</description></item>
</channel></rss>"""


@pytest.mark.parametrize(
    ("body", "kind", "canonical"),
    [
        (ATOM, "application/atom+xml", POST),
        # a tracking parameter on the canonical link still names the post
        (
            ATOM,
            "application/atom+xml",
            "https://blog.example.org/posts/tiny-http-cache/?utm_source=x",
        ),
        (RSS, "application/rss+xml", POST),
    ],
    ids=["atom", "atom-tracking", "rss-atom-link"],
)
def test_an_entry_naming_a_post_canonical_is_folded_into_it(
    example: Path, httpserver: HTTPServer, body: str, kind: str, canonical: str
) -> None:
    httpserver.expect_request("/mirror.xml").respond_with_data(
        body.format(canonical=canonical), content_type=kind
    )
    config = follow(example, httpserver.url_for("/mirror.xml"), "Mirror")
    store = Store.open(config.database.url)
    try:
        pipeline.ingest(config, store, NOW)
        (cluster,) = [c for c in store.dupe_clusters() if c.canonical.entry.link == POST]
        assert [(c.entry.title, c.dup_reason) for c in cluster.copies] == [
            ("Reposted: a conditional-GET cache", "url")
        ]
        titles = [s.entry.title for s in store.visible_entries(NOW)]
        assert "Reposted: a conditional-GET cache" not in titles  # the article shows once
        assert "Reposted: something else" in titles  # no canonical link: its own entry
        pipeline.build(config, store, NOW)
    finally:
        store.close()
    index = (config.output.dir / "index.html").read_text(encoding="utf-8")
    doc: Any = lxml_html.fromstring(index)
    (entry,) = doc.xpath(f"//article[.//h2/a/@href='{POST}' or .//h3/a/@href='{POST}']")
    assert "亦见于：Mirror" in entry.text_content()


def test_raster_data_images_pass_and_other_data_urls_do_not(
    example: Path, httpserver: HTTPServer
) -> None:
    content = (
        f'<p>A dot: <img src="{PNG}" alt="a red dot"></p>'
        f'<p>A vector: <img src="{SVG}" alt="a vector"></p>'
        '<p><a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">open</a></p>'
    )
    escaped = content.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    feed = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Pictures</title><id>urn:pictures</id><updated>2026-11-21T00:00:00Z</updated>
  <entry><id>urn:pictures:1</id><title>Inline pictures</title>
    <link href="https://pictures.example.com/2026/inline-pictures"/>
    <updated>2026-11-21T00:00:00Z</updated>
    <content type="html">{escaped}</content></entry>
</feed>"""
    httpserver.expect_request("/pictures.xml").respond_with_data(
        feed, content_type="application/atom+xml"
    )
    config = follow(example, httpserver.url_for("/pictures.xml"), "Pictures")
    store = Store.open(config.database.url)
    try:
        pipeline.ingest(config, store, NOW)
        pipeline.build(config, store, NOW)
    finally:
        store.close()
    atom = etree.parse(str(config.output.dir / "feed.atom"))
    (entry,) = [e for e in atom.iter(f"{A}entry") if e.findtext(f"{A}title") == "Inline pictures"]
    html = entry.findtext(f"{A}content") or ""
    body = lxml_html.fragment_fromstring(html, create_parent="div")
    srcs = {img.get("alt"): img.get("src") for img in body.iter("img")}
    assert srcs == {"a red dot": PNG, "a vector": None}
    (link,) = body.iter("a")
    assert link.text == "open" and link.get("href") is None
    assert "svg" not in html and "text/html" not in html
