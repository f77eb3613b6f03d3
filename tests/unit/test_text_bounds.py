"""What leaves text.py and sanitize.py is XML, and costs time linear in what came in.

Every function that returns text (sanitize_html, markdown_to_html,
rebase_links, html_to_text, first_heading, excerpt) is given the characters
XML 1.0 cannot carry, raw and as character references, in text and in
attributes: its result must be something lxml accepts. And each hostile
shape of HTML that made the sanitizer quadratic is read in seconds.
"""

from __future__ import annotations

import re
import time

import nh3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from aggregator import sanitize
from aggregator import text as tx

#: what XML 1.0 cannot carry, and what HTML reads as an error (DEL, C1, noncharacters)
NOT_XML = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufdcf\ufdf0-\ufffd\U00010000-\U0010ffff]"
    "|[\U0001fffe\U0010ffff]"
)
BAD = ["\x00", "\x01", "\x08", "\x0b", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"]
BAD += ["\x7f", "\x85", "\x9f", "\ufdd0", "\U0001fffe", "\U0010ffff"]
BAD_REFS = ["&#1;", "&#x1f;", "&#0;", "&#xd800;", "&#57343;", "&#xfffe;", "&#x110000;", "&#1"]
BAD_REFS += ["&#x7f;", "&#xfdd0;", "&#x10ffff;"]


def lxml_takes(value: str) -> None:
    """lxml refuses a string with a character XML cannot carry: the failure
    that stopped every build. (And HTML reads DEL, C1 or a noncharacter as
    an error.)"""
    assert not NOT_XML.search(value), repr(value)
    etree.Element("x", a=value).text = value


pieces = st.sampled_from(BAD + BAD_REFS + ["a", " ", "é", "学", "&amp;", "/", ":", "#"])
naughty = st.lists(pieces, min_size=1, max_size=8).map("".join)
TEMPLATES = [
    '<p title="{0}">x{0}y</p>',
    '<a href="{0}">l</a><a href="java{0}script:alert(1)">j</a>',
    '<img src="{0}i.png" alt="{0}"><img src="data:image/png;base64,AA{0}AA">',
    "<h2>{0}</h2><pre><code>{0}</code></pre>",
]


@settings(max_examples=200)
@given(naughty, st.sampled_from(TEMPLATES), st.sampled_from([None, "https://b.example/d/"]))
def test_nothing_leaves_text_that_lxml_refuses(bad: str, template: str, base: str | None) -> None:
    html = template.format(bad)
    clean = tx.sanitize_html(html, base)
    lxml_takes(clean)
    lxml_takes(tx.html_to_text(html))
    lxml_takes(tx.html_to_text(clean))
    lxml_takes(tx.markdown_to_html(f"# {bad}\n\n[l]({bad}) {html}\n"))
    lxml_takes(tx.rebase_links(html, "https://b.example/p/", "https://b.example/"))
    lxml_takes(tx.first_heading(tx.markdown_to_html(f"# a{bad}b\n")) or "")
    lxml_takes(tx.excerpt(f"x{bad} " * 40, 20))


def test_a_control_character_in_a_link_is_percent_encoded_as_a_browser_does() -> None:
    clean = tx.sanitize_html('<a href="a&#1;b">l</a>', "https://b.example/d/")
    assert 'href="https://b.example/d/a%01b"' in clean
    # Inside a scheme it made the URL relative, and encoded it stays so:
    # removing it would have made "javascript:" of it.
    for base in (None, "https://b.example/d/"):
        clean = tx.sanitize_html('<a href="java&#1;script:alert(1)">j</a>', base)
        assert "javascript" not in clean and "java%01script:alert(1)" in clean
    assert 'title="t y"' in tx.sanitize_html('<p title="t&#1;y">p</p>')


def test_an_entry_stored_before_the_fix_still_gives_an_xml_safe_excerpt() -> None:
    # Its text came from html_to_text when that passed "&#1;" through.
    assert tx.excerpt("te\x01xt " * 50, 12) == "te xt te xt..."
    assert tx.excerpt("short\x02", 50) == "short"


# -- nesting -----------------------------------------------------------------------


def depth(html: str) -> int:
    """The nesting depth of `html`, as lxml reads it (below its limit of 256)."""
    root = etree.fromstring(f"<div>{html}</div>", etree.HTMLParser())
    return max(len(list(e.iterancestors())) for e in root.iter()) - 2  # html, body


def test_nesting_below_the_cap_is_kept_as_the_sanitizer_writes_it() -> None:
    html = "<div>" * 90 + "<p>x <b>y</b></p>" + "</div>" * 90
    notes: list[str] = []
    assert tx.sanitize_html(html, notes=notes) == nh3.clean(html, tags=sanitize._TAGS)
    assert notes == []


def test_nesting_past_the_cap_keeps_the_text_and_says_so() -> None:
    html = "<p>a</p>" + "<div><span>" * 120 + "deep" + "</span></div>" * 120 + "<p>after</p>"
    notes: list[str] = []
    clean = tx.sanitize_html(html, notes=notes)
    assert depth(clean) == sanitize.MAX_DEPTH
    assert tx.html_to_text(clean) == "a deep after"
    assert notes == [
        "HTML nested deeper than 100 levels: the markup below that depth was dropped, its text kept"
    ]


def test_nesting_past_what_lxml_reads_drops_the_rest_and_says_so() -> None:
    html = "<p>a</p>" + "<div>" * 3000 + "deep" + "</div>" * 3000 + "<p>after</p>"
    notes: list[str] = []
    clean = tx.sanitize_html(html, notes=notes)
    assert tx.html_to_text(clean) == "a"
    assert notes[0] == "HTML nested over 250 levels deep: what follows that point was dropped"
    notes = []
    tx.rebase_links(html, "https://b.example/p/", "https://b.example/", notes=notes)
    assert notes == ["HTML nested over 250 levels deep: what follows that point was dropped"]


N = 200_000
HOSTILE = {
    "nested divs (2.2 MB)": "<div>" * N + "x" + "</div>" * N,
    "nested spans": "<span>" * N + "x" + "</span>" * N,
    "unclosed divs": "<div>" * N,
    "formatting to reconstruct": "".join(f'<b class="c{i}">' for i in range(N // 2))
    + "<p>x</p>" * (N // 2),
    "links then paragraphs": "".join(f'<a href="/{i}">' for i in range(N // 2))
    + "<p>x</p>" * (N // 2),
    "tables": "<table><tr><td>" * N,
    "divs out of tables": "<div><table></div></table>" * (N // 2),
    "lists": "<ul><li>" * N,
    "end tags that match nothing": "<div>" * 200 + "</span>" * N,
    "flat paragraphs": "<p>x</p>" * N,
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_html_is_sanitized_and_read_in_seconds(name: str) -> None:
    # Quadratic before: 200,000 nested divs took over a minute in nh3.
    started = time.monotonic()
    clean = tx.sanitize_html(HOSTILE[name], "https://b.example/")
    tx.html_to_text(clean)
    assert time.monotonic() - started < 15
    assert clean.count("<") <= 2 * HOSTILE[name].count("<") + 2


def test_first_heading_reads_unclosed_headings_in_linear_time() -> None:
    # The regex read to the end of the text once for each unclosed <h1>.
    started = time.monotonic()
    assert tx.first_heading("<h1>a" * 100_000) is None
    assert tx.first_heading("<h1" * 100_000) is None
    assert tx.first_heading("<p>" + "<h2 x" * 50_000 + "><b>T</b></h2>") == "T"
    assert time.monotonic() - started < 5


def test_excerpt_of_megabytes_of_unclosed_spans_is_quick() -> None:
    started = time.monotonic()
    for text in ("\\(" * 1_000_000, "`" * 2_000_000, "\\( a " * 300_000, "x" * 2_000_000):
        tx.excerpt(text, 300)
    assert time.monotonic() - started < 10
