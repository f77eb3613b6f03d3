"""The output checker of tests/live_script.py finds each kind of live script it
names, as a browser or feed reader would see it, and passes clean markup."""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest

from tests.live_script import (
    feed_problems,
    html_problems,
    json_feed_problems,
    message_problems,
    output_problems,
    script_url,
    text_problems,
)

PAGE = "<!DOCTYPE html><html><head><title>t</title></head><body>{}</body></html>"


def scripts(problems: list[str]) -> list[str]:
    """The findings of live script, parse errors and odd characters left out."""
    return [p for p in problems if "parse error" not in p and "character U+" not in p]


@pytest.mark.parametrize(
    "markup",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//x.example/x.js></SCRIPT>",
        '<img src="x.png" onerror="alert(1)">',
        '<a href="javascript:alert(1)">a</a>',
        '<a href=" JaVaScRiPt:alert(1)">a</a>',
        '<a href="java\tscript:alert(1)">a</a>',
        '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">a</a>',
        '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">a</a>',
        '<a href="vbscript:msgbox(1)">a</a>',
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">a</a>',
        '<img src="data:image/svg+xml,&lt;svg onload=alert(1)&gt;">',
        '<img srcset="a.png 1x, javascript:alert(1) 2x">',
        '<form action="https://x.example/"><button>b</button></form>',
        '<button formaction="javascript:alert(1)">b</button>',
        '<iframe src="https://x.example/"></iframe>',
        '<object data="x.swf"></object>',
        '<embed src="x.swf">',
        '<svg><a xlink:href="javascript:alert(1)"><text>a</text></a></svg>',
        '<svg><a><animate attributeName="href" to="javascript:alert(1)"/></a></svg>',
        '<div style="background:url(javascript:alert(1))">a</div>',
        '<div style="width: expression(alert(1))">a</div>',
    ],
)
def test_live_script_in_a_page_is_found(markup: str) -> None:
    assert scripts(html_problems(PAGE.format(markup), "p.html")) != []


@pytest.mark.parametrize(
    "head",
    ['<base href="https://x.example/">', '<meta http-equiv="Refresh" content="0;url=https://x">'],
)
def test_base_and_meta_refresh_are_found(head: str) -> None:
    page = f"<!DOCTYPE html><html><head><title>t</title>{head}</head><body></body></html>"
    assert scripts(html_problems(page, "p.html")) != []


def test_a_clean_page_passes() -> None:
    body = (
        '<p><a href="https://example.org/a?b=1&amp;c=2">a</a> <img src="/x.png" alt="x">'
        '<img src="data:image/png;base64,AAAA" alt=""> <code>&lt;script&gt;</code> '
        "javascript:alert(1) as text is no link</p>"
    )
    assert html_problems(PAGE.format(body), "p.html") == []


def test_parse_errors_and_control_characters_are_found() -> None:
    assert html_problems(PAGE.format("<p>a</b>"), "p.html") != []
    assert html_problems(PAGE.format("<p>&bogus;</p>"), "p.html") != []
    # "&" before no letter or digit is no error in today's HTML (html5lib 1.1 says one)
    assert html_problems(PAGE.format('<p>a &{b} <a href="x?a=1&{b}">c</a> &amp; d</p>'), "p") == []
    problems = html_problems(PAGE.format("<p>a\x7fb\x85c</p>"), "p.html")
    assert any("U+007F" in p for p in problems) and any("U+0085" in p for p in problems)
    assert text_problems("tab\tand\nnewline and 中文 ✓") == []
    assert text_problems("a\x01b") == ["character U+0001 (1x)"]


def test_urls_are_read_as_a_browser_reads_them() -> None:
    assert script_url("\x00 javascript:x") and script_url("JAVA\nSCRIPT:x")
    assert not script_url("https://x.example/javascript:x")
    assert not script_url("/relative/javascript:x")
    assert script_url("data:text/html,x") and not script_url("data:image/png;base64,AA")


ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:x</id><title>t</title>
<updated>2026-11-20T00:00:00Z</updated>{}</feed>"""


@pytest.mark.parametrize(
    "entry",
    [
        '<entry><id>e</id><title>t</title><link href="javascript:alert(1)"/></entry>',
        '<entry><id>e</id><title type="html">&lt;img src=x onerror=alert(1)&gt;</title></entry>',
        '<entry><id>e</id><title>t</title><content type="html">&lt;script&gt;x()'
        "&lt;/script&gt;</content></entry>",
        '<entry><id>e</id><title>t</title><content type="xhtml"><div '
        'xmlns="http://www.w3.org/1999/xhtml"><a href="javascript:x()">a</a></div></content>'
        "</entry>",
        "<entry><id>e</id><title>t</title><author><name>a</name>"
        "<uri>javascript:x()</uri></author></entry>",
    ],
)
def test_live_script_in_an_atom_feed_is_found(entry: str) -> None:
    assert scripts(feed_problems(ATOM.format(entry).encode(), "f.atom")) != []


def test_a_clean_atom_feed_passes_and_escaped_text_is_no_markup() -> None:
    entry = (
        '<entry><id>e</id><title type="text">&lt;script&gt;alert(1)&lt;/script&gt;</title>'
        '<link href="https://example.org/a"/><content type="html">&lt;p&gt;&amp;lt;img '
        "onerror=x&amp;gt; shown as text&lt;/p&gt;</content></entry>"
    )
    assert feed_problems(ATOM.format(entry).encode(), "f.atom") == []


def test_an_ill_formed_feed_is_found() -> None:
    assert feed_problems(ATOM.format("<entry>\x01</entry>").encode(), "f.atom") != []
    assert feed_problems(b"<rss><channel>", "r.xml") != []


RSS = """<?xml version="1.0"?><rss version="2.0"
xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>t</title>
<link>https://example.org/</link><description>d</description><item>{}</item></channel></rss>"""


@pytest.mark.parametrize(
    "item",
    [
        "<title>t</title><link>javascript:alert(1)</link>",
        "<title>t</title><description>&lt;img src=x onerror=alert(1)&gt;</description>",
        "<title>t</title><content:encoded><![CDATA[<script>x()</script>]]></content:encoded>",
        '<title>t</title><enclosure url="javascript:x()" type="audio/mpeg" length="1"/>',
        "<title>t</title><guid>javascript:x()</guid>",
        "<title>t</title><comments>vbscript:x</comments>",
    ],
)
def test_live_script_in_an_rss_feed_is_found(item: str) -> None:
    assert scripts(feed_problems(RSS.format(item).encode(), "r.xml")) != []


def test_a_non_permalink_guid_is_no_link() -> None:
    item = '<title>t</title><guid isPermaLink="false">javascript:x()</guid>'
    assert feed_problems(RSS.format(item).encode(), "r.xml") == []


def test_live_script_in_a_json_feed_is_found() -> None:
    def feed(**item: str) -> bytes:
        doc = {"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": [item]}
        return json.dumps(doc).encode()

    assert json_feed_problems(feed(id="1", url="https://example.org/", content_html="<p>x</p>"),
                              "f.json") == []  # fmt: skip
    assert scripts(json_feed_problems(feed(id="1", url="javascript:x()"), "f.json")) != []
    assert scripts(json_feed_problems(feed(id="1", content_html="<svg onload=x()>"), "f.json"))
    assert json_feed_problems(feed(id="1", title="a\x7f"), "f.json") != []
    assert json_feed_problems(b"{", "f.json") != []


def message(html: str, text: str) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "s"
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.org"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def test_live_script_in_a_message_is_found() -> None:
    clean = PAGE.format("<p>hello</p>")
    assert message_problems(message(clean, "hello\n"), "m.eml") == []
    assert scripts(message_problems(message(PAGE.format("<script>x()</script>"), "hi\n"), "m.eml"))
    assert message_problems(message(clean, "a\x1bb\n"), "m.eml") != []


def test_outputs_are_checked_by_their_name() -> None:
    assert output_problems("index.html", PAGE.format("<script></script>").encode()) != []
    assert output_problems("feed.atom", b"<feed") != []
    assert output_problems("feed.json", b"[") != []
    assert output_problems("email.txt", b"\xff") != []
    assert output_problems("email.txt", b"a\x07") != []
