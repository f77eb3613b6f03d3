"""Links from outside and redirects, against real local servers and a real store.

- A redirect whose Location is not http(s) (javascript:, mailto:, data:,
  about:, a bad port) is that feed's failure; the other feeds are stored.
- A redirect from a public address into loopback is refused, and followed
  with [fetch] allow_private_redirects.
- javascript: (and other non-web) item, channel and enclosure links never
  become a link in any output: pages, tag pages, email.html, rss.xml, the Atom feeds
  (alternate, via, source) and feed.json; nor do rows stored before the
  policy existed. Checked by parsing every output with lxml.
- Text a post shows as code stays text in rss.xml's <description>.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html
from pytest_httpserver import HTTPServer
from werkzeug import Response
from werkzeug.datastructures import Headers

from aggregator import pipeline
from aggregator import settings as settings_mod
from aggregator.config import Config
from aggregator.model import Entry, FeedMeta, Source, SourceKind
from aggregator.sources import redirects
from tests.integration.feedkit import atom, feed_result, ingest, make_config, opened, titles

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ATOM_NS = "{http://www.w3.org/2005/Atom}"
CONTENT_NS = "{http://purl.org/rss/1.0/modules/content/}"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


class RawLocation(Response):
    """A redirect whose Location goes out as written: werkzeug would otherwise
    parse it (and answer 500 for a bad port)."""

    def get_wsgi_headers(self, environ: Any) -> Headers:
        return Headers(self.headers)


def redirect_to(location: str) -> RawLocation:
    return RawLocation("", status=302, headers=[("Location", location)])


# -- redirects whose target is not a web page ---------------------------------------


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        ("javascript:alert(1)", "javascript: is not allowed"),
        ("mailto:feeds@example.org", "mailto: is not allowed"),
        ("data:text/html,<script>alert(1)</script>", "data: is not allowed"),
        ("about:blank", "about: is not allowed"),
        ("http://127.0.0.1:99999/feed", "Port out of range"),
        ("http://[::1/feed", "not a valid URL"),
    ],
)
def test_a_redirect_to_a_non_web_url_fails_only_its_feed(
    httpserver: HTTPServer, tmp_path: Path, location: str, reason: str
) -> None:
    httpserver.expect_request("/moved").respond_with_handler(lambda r: redirect_to(location))
    httpserver.expect_request("/fine").respond_with_data(atom(2))
    moved, fine = httpserver.url_for("/moved"), httpserver.url_for("/fine")
    config = make_config(tmp_path, [moved, fine])
    report = ingest(config, NOW)
    (failure,) = report.failures
    assert failure.location == moved
    assert f"redirected to {location!r}, not followed: " in failure.reason
    assert reason in failure.reason
    assert feed_result(report, fine).new == 2
    assert sorted(titles(config, NOW)) == ["e entry 0", "e entry 1"]


# -- redirects from a public address into private ones ------------------------------
# The test servers all listen on loopback. The feed's own server listens on
# 127.0.0.2 and a resolver handed to the fetcher (FetchSettings.resolve, the
# seam the fetcher looks addresses up through) says 127.0.0.2 is a public
# address: that is the one thing pretended. The redirect targets are looked
# up for real: 127.0.0.1 is an address, "localhost" goes through getaddrinfo.

PUBLIC_LOOKING = "93.184.215.14"


@pytest.fixture
def public_server() -> Iterator[HTTPServer]:
    server = HTTPServer(host="127.0.0.2", port=0)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        server.stop()


@pytest.fixture
def pretend_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetcher takes 127.0.0.2 for a public address; everything else is looked up."""

    async def resolve(host: str) -> list[str]:
        if host == "127.0.0.2":
            return [PUBLIC_LOOKING]
        return await redirects.system_addresses(host)

    adapter = settings_mod.fetch_settings
    monkeypatch.setattr(
        settings_mod, "fetch_settings", lambda config: replace(adapter(config), resolve=resolve)
    )


def admin_requests(server: HTTPServer) -> int:
    return sum(1 for request, _ in server.log if request.path == "/admin")


@pytest.mark.usefixtures("pretend_public")
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_redirect_from_public_into_loopback_is_refused(
    httpserver: HTTPServer, public_server: HTTPServer, tmp_path: Path, host: str
) -> None:
    httpserver.expect_request("/admin").respond_with_data(atom(1, title="Admin", prefix="SECRET"))
    target = f"http://{host}:{httpserver.port}/admin"
    public_server.expect_request("/feed").respond_with_handler(lambda r: redirect_to(target))
    public_server.expect_request("/other").respond_with_data(atom(1, prefix="public"))
    feed, other = public_server.url_for("/feed"), public_server.url_for("/other")
    config = make_config(tmp_path, [feed, other])
    report = ingest(config, NOW)
    (failure,) = report.failures
    assert failure.location == feed
    assert f"refused a redirect to {target}" in failure.reason
    assert "from a public address into a private one (127.0.0.1)" in failure.reason
    assert "allow_private_redirects" in failure.reason
    assert admin_requests(httpserver) == 0  # never even asked
    assert titles(config, NOW) == ["public entry 0"]


@pytest.mark.usefixtures("pretend_public")
def test_allow_private_redirects_follows_them(
    httpserver: HTTPServer, public_server: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/admin").respond_with_data(atom(1, title="LAN", prefix="lan"))
    target = f"http://localhost:{httpserver.port}/admin"
    public_server.expect_request("/feed").respond_with_handler(lambda r: redirect_to(target))
    feed = public_server.url_for("/feed")
    config = make_config(tmp_path, [feed], allow_private_redirects=True)
    report = ingest(config, NOW)
    assert report.failures == ()
    assert titles(config, NOW) == ["lan entry 0"]


@pytest.mark.usefixtures("pretend_public")
def test_a_redirect_between_public_addresses_is_followed(
    public_server: HTTPServer, tmp_path: Path
) -> None:
    public_server.expect_request("/old").respond_with_handler(
        lambda r: redirect_to(public_server.url_for("/new"))
    )
    public_server.expect_request("/new").respond_with_data(atom(1, prefix="new"))
    config = make_config(tmp_path, [public_server.url_for("/old")])
    assert ingest(config, NOW).failures == ()
    assert titles(config, NOW) == ["new entry 0"]


def test_a_feed_on_a_private_address_may_redirect_within_it(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    # No pretending: 127.0.0.1 to localhost on another path, as a LAN feed would.
    target = f"http://localhost:{httpserver.port}/real"
    httpserver.expect_request("/feed").respond_with_handler(lambda r: redirect_to(target))
    httpserver.expect_request("/real").respond_with_data(atom(1, prefix="lan"))
    config = make_config(tmp_path, [httpserver.url_for("/feed")])
    assert ingest(config, NOW).failures == ()
    assert titles(config, NOW) == ["lan entry 0"]


# -- links shown to readers ---------------------------------------------------------

HOSTILE_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Hostile</title>
<link>javascript:alert(document.domain)</link>
<item><title>JS link</title><link>javascript:alert(document.domain)</link><guid>g1</guid>
  <description>one</description><category>t</category></item>
<item><title>Tab link</title><link>java&#x09;script:alert(2)</link><guid>g2</guid>
  <description>two</description><category>t</category></item>
<item><title>Data link</title><link>data:text/html,&lt;script&gt;alert(3)&lt;/script&gt;</link>
  <guid>g3</guid><description>three</description><category>t</category></item>
<item><title>VB link</title><link> VBScript:msgbox(4)</link><guid>g4</guid>
  <enclosure url="mailto:podcast@example.org" type="audio/mpeg" length="1"/>
  <description>four</description><category>t</category></item>
<item><title>Fine link</title><link>https://fine.example/5</link><guid>g5</guid>
  <enclosure url="https://fine.example/5.mp3" type="audio/mpeg" length="1"/>
  <description>five</description><category>t</category></item>
</channel></rss>"""

POST = """---
title: Escaping in templates
date: 2026-11-20 10:00
tags: [security]
---

Never write `<img src=x onerror=alert(1)>` in a template; write it as text.
"""

#: the schemes a browser reads in a URL (WHATWG: C0 and space stripped at the
#: ends, tabs and newlines removed anywhere, case folded)
_SCHEME = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*):")


def scheme(url: str) -> str:
    cleaned = re.sub(r"[\t\n\r]", "", url.strip("".join(chr(c) for c in range(0x21))))
    m = _SCHEME.match(cleaned)
    return m.group(1).lower() if m else ""


def html_urls(root: Any) -> Iterator[str]:
    for el in root.iter():
        for name in ("href", "src", "action", "formaction", "poster", "cite"):
            value = el.get(name)
            if value is not None:
                yield value


def event_handlers(root: Any) -> list[str]:
    return [
        f"<{el.tag} {k}>" for el in root.iter() for k in el.attrib if k.lower().startswith("on")
    ]


def fragment(text: str | None) -> Any:
    return lxml_html.fragment_fromstring(text or "", create_parent="div")


def output_urls(public: Path) -> dict[str, list[str]]:
    """Every URL a reader could follow in each output, read with lxml, and the
    event handlers in every bit of HTML (the pages and the HTML feeds carry)."""
    found: dict[str, list[str]] = {}
    for path in sorted(public.rglob("*")):
        rel = path.relative_to(public).as_posix()
        urls: list[str] = []
        html_parts: list[Any] = []
        if path.suffix == ".html":
            page = lxml_html.document_fromstring(path.read_bytes())
            html_parts.append(page)
        elif path.suffix == ".atom":
            doc = etree.parse(str(path))
            urls += [str(link.get("href")) for link in doc.iter(f"{ATOM_NS}link")]
            for el in doc.iter(f"{ATOM_NS}content", f"{ATOM_NS}summary", f"{ATOM_NS}title"):
                if el.get("type") == "html":
                    html_parts.append(fragment(el.text))
        elif path.name == "rss.xml":
            doc = etree.parse(str(path))
            urls += [str(link.text) for link in doc.iter("link")]
            urls += [str(s.get("url")) for s in doc.iter("source")]
            urls += [str(e.get("url")) for e in doc.iter("enclosure")]
            for el in doc.iter("description", f"{CONTENT_NS}encoded"):
                html_parts.append(fragment(el.text))  # readers take both as HTML
        elif path.name == "feed.json":
            feed = json.loads(path.read_text(encoding="utf-8"))
            urls += [feed.get("home_page_url", ""), feed.get("feed_url", "")]
            for item in feed["items"]:
                urls += [item.get(k) for k in ("url", "external_url") if k in item]
                html_parts.append(fragment(item.get("content_html")))
        else:
            continue
        for part in html_parts:
            urls += list(html_urls(part))
            urls += event_handlers(part)
        found[rel] = urls
    return found


def build(config: Config) -> list[str]:
    with opened(config) as store:
        report = pipeline.build(config, store, NOW)
    return [str(f) for f in report.failures]


def assert_no_live_script(public: Path) -> dict[str, list[str]]:
    found = output_urls(public)
    for rel, urls in found.items():
        handlers = [u for u in urls if u.startswith("<")]
        assert handlers == [], f"{rel}: {handlers}"
        # every link is http(s) or relative to our own pages
        bad = [u for u in urls if scheme(u) not in ("", "http", "https")]
        assert bad == [], f"{rel}: {bad}"
    return found


def test_no_non_web_link_reaches_any_output(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/hostile").respond_with_data(
        HOSTILE_RSS, content_type="application/rss+xml"
    )
    url = httpserver.url_for("/hostile")
    config = make_config(tmp_path, [url])
    report = ingest(config, NOW)
    result = feed_result(report, url)
    assert result.new == 5 and report.failures == ()  # every entry is kept, without its link
    # said once for the feed, not once per item
    (warning,) = result.warnings
    assert warning.location == url
    assert warning.reason.startswith("left out 5 links not shown to readers: ")
    assert "javascript: is not allowed (only http and https) (3x)" in warning.reason

    assert build(config) == []
    public = config.output.dir
    found = assert_no_live_script(public)
    # every kind of output was looked at, and the good link is in each
    for rel in ("index.html", "tags/t/index.html", "email.html", "rss.xml", "feed.atom",
                "tags/t.atom", "feed.json"):  # fmt: skip
        assert "https://fine.example/5" in found[rel], rel
    for rel in ("rss.xml", "feed.atom", "tags/t.atom", "feed.json"):  # content: the enclosure
        assert "https://fine.example/5.mp3" in found[rel], rel
    # the channel's javascript: link is not its via or source link: the feed's own URL is
    feed = etree.parse(str(public / "feed.atom"))
    via = {
        str(link.get("href")) for link in feed.iter(f"{ATOM_NS}link") if link.get("rel") == "via"
    }
    assert via == {url}
    # an entry without a link shows its title, not an empty link to the page itself
    index = lxml_html.document_fromstring((public / "index.html").read_bytes())
    headings = {" ".join(map(str, h.itertext())): h for h in index.iter("h2", "h3")}
    assert headings["JS link"].find("a") is None
    assert headings["Fine link"].find("a") is not None


def test_rows_stored_before_the_policy_cannot_put_script_in_an_output(tmp_path: Path) -> None:
    config = make_config(tmp_path, ["https://old.example/feed.xml"])
    source = Source(SourceKind.FEED, "https://old.example/feed.xml", "Old feed", ("t",))
    entry = Entry(
        guid="old-1", title="Old\x01 row", link="javascript:alert(document.domain)",
        canonical_url="javascript:alert(document.domain)", published=NOW - timedelta(days=1),
        updated=NOW - timedelta(days=1), author="", content_html="<p>Old body</p>",
        text="Old body", summary=None, tags=("t",), content_hash="x", fingerprint="y",
    )  # fmt: skip
    with opened(config) as store:
        source_id = store.ensure_source(source)
        meta = FeedMeta(id="urn:old", title="Old", link="javascript:alert(2)")
        store.upsert_feeds([(source_id, [entry], meta)], NOW - timedelta(days=1))
    assert build(config) == []
    found = assert_no_live_script(config.output.dir)
    assert "https://old.example/feed.xml" in found["feed.atom"]  # via and source self
    feed_text = (config.output.dir / "feed.atom").read_text(encoding="utf-8")
    assert "Old  row" in feed_text and "javascript" not in feed_text


def test_code_in_a_post_stays_text_in_every_feed(httpserver: HTTPServer, tmp_path: Path) -> None:
    config = make_config(tmp_path, [])
    (tmp_path / "content" / "escaping.md").write_text(POST, encoding="utf-8")
    assert ingest(config, NOW).failures == ()
    assert build(config) == []
    public = config.output.dir
    assert_no_live_script(public)
    rss = etree.parse(str(public / "rss.xml"))
    (description,) = [str(d.text) for d in rss.iter("description") if "Never" in str(d.text)]
    # a reader unescapes the XML, then reads HTML: it must find the code as text
    shown = fragment(description)
    assert shown.find(".//img") is None
    assert "<img src=x onerror=alert(1)>" in shown.text_content()
    (encoded,) = rss.iter(f"{CONTENT_NS}encoded")
    assert fragment(encoded.text).find(".//img") is None
    # Atom: the excerpt is a text construct, the content HTML with the code escaped
    feed = etree.parse(str(public / "feed.atom"))
    (summary,) = feed.iter(f"{ATOM_NS}summary")
    assert summary.get("type") in (None, "text")
    assert "<img src=x onerror=alert(1)>" in str(summary.text)
    (content,) = feed.iter(f"{ATOM_NS}content")
    assert content.get("type") == "html" and fragment(content.text).find(".//img") is None
    # JSON Feed: summary is plain text, content_html has no element from the code
    (item,) = json.loads((public / "feed.json").read_text(encoding="utf-8"))["items"]
    assert "<img src=x onerror=alert(1)>" in item["summary"]
    assert fragment(item["content_html"]).find(".//img") is None
