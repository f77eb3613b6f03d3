"""Text transformations: Markdown -> HTML, sanitizing, HTML -> text, excerpts.

Pure functions, no IO. Math written as \\( \\), \\[ \\], $ $ or $$ $$ passes
through verbatim (escaped as text inside a span or div of class "math"), so
a MathJax or KaTeX on the reader's side can typeset it and Markdown never
eats its backslashes or underscores.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import nh3
from lxml import etree
from lxml import html as lxml_html
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.texmath import texmath_plugin

_CLOSE = {"\\(": "\\)", "\\[": "\\]", "$": "$", "$$": "$$"}


def _render_math(tokens: Sequence[Token], idx: int, tag: str) -> str:
    tok = tokens[idx]
    opener = tok.markup or "$"
    source = f"{opener}{tok.content}{_CLOSE.get(opener, opener)}"
    cls = "math display" if tag == "div" else "math inline"
    return f'<{tag} class="{cls}">{html_lib.escape(source, quote=False)}</{tag}>' + (
        "\n" if tag == "div" else ""
    )


@cache
def _markdown() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"html": True})
        .enable("table")
        .enable("strikethrough")
        .use(dollarmath_plugin, allow_space=True, double_inline=True)
        .use(texmath_plugin, delimiters="brackets")
    )

    def inline(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return _render_math(tokens, idx, "span")

    def block(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return _render_math(tokens, idx, "div")

    for name in ("math_inline", "math_inline_double"):
        md.add_render_rule(name, inline)
    for name in ("math_block", "math_block_label", "math_block_eqno"):
        md.add_render_rule(name, block)
    return md


def markdown_to_html(source: str) -> str:
    """Render a Markdown body (no front matter) to HTML; math stays verbatim."""
    html: str = _markdown().render(source)
    return html


# Tags and attributes a digest may carry: formatting, links, images, tables,
# code and math. No script, style, iframe, form or event handler ever passes.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
}  # fmt: skip
_ATTRS = {
    "*": {"class", "title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
}


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Clean untrusted HTML and make its links absolute against `base_url`."""
    cleaned = nh3.clean(
        fragment,
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer",
    )
    if base_url and cleaned.strip():
        cleaned = absolutize_links(cleaned, base_url)
    return cleaned


def absolutize_links(fragment: str, base_url: str) -> str:
    """Resolve relative href and src attributes against `base_url`."""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    root.make_links_absolute(base_url, resolve_base_href=False)
    inner = (root.text and html_lib.escape(root.text, quote=False)) or ""
    return inner + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )


_BLOCK = {
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "pre", "table", "tr", "td", "th", "dl", "dt", "dd", "figure", "figcaption", "br", "hr",
    "section", "article", "header", "footer",
}  # fmt: skip
_SPACE = re.compile(r"\s+")


def html_to_text(fragment: str, code_placeholder: str = "[code]") -> str:
    """Plain text of an HTML fragment: blocks joined by single spaces.

    A code block becomes `code_placeholder`, an image its alt text; runs of
    white space fold to one space.
    """
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    parts: list[str] = []

    def walk(el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "pre":
            parts.append(f" {code_placeholder} ")
        elif tag == "img":
            parts.append(f" {el.get('alt') or ''} ")
        elif tag in ("script", "style"):
            pass
        else:
            if tag in _BLOCK:
                parts.append(" ")
            if el.text and tag:
                parts.append(el.text)
            for child in el:
                walk(child)
            if tag in _BLOCK:
                parts.append(" ")
        if el.tail:
            parts.append(el.tail)

    if root.text:
        parts.append(root.text)
    for child in root:
        walk(child)
    return fold_space("".join(parts))


def fold_space(text: str) -> str:
    """Fold every run of white space to one space and trim the ends."""
    return _SPACE.sub(" ", text).strip()


def excerpt(text: str, length: int, ellipsis: str = "...") -> str:
    """Cut plain `text` to at most `length` characters, at a word boundary.

    The ellipsis is added only when text was cut.
    """
    text = fold_space(text)
    if len(text) <= length:
        return text
    cut = text[:length]
    # Cut between words for Latin text; CJK text has no spaces and may be cut anywhere.
    space = cut.rfind(" ")
    if space > length * 0.6 and text[length].isalnum() and cut[-1].isalnum():
        cut = cut[:space]
    return cut.rstrip() + ellipsis


def first_words(text: str, count: int = 10) -> str:
    """The first `count` words of `text`, for an entry with no title."""
    words = fold_space(text).split(" ")
    head = " ".join(words[:count])
    return head if len(words) <= count else head + "..."
