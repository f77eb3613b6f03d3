"""Text transformations: Markdown -> HTML, sanitizing, HTML -> text, excerpts.

Pure functions, no IO. Math written as \\( \\), \\[ \\], $ $ or $$ $$ becomes
MathML with its TeX kept as an annotation (aggregator.texmath); Markdown never
eats its backslashes or underscores, and the text of a formula is its TeX.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from contextvars import ContextVar
from functools import cache
from typing import Any
from urllib.parse import urljoin, urlsplit

import nh3
import regex
from lxml import etree
from lxml import html as lxml_html
from markdown_it import MarkdownIt
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from aggregator.texmath import (
    MATHML_ATTRS,
    MATHML_TAGS,
    PROBLEMS,
    MathProblem,
    math_plugin,
    reduce_rendered_math,
)


@cache
def _markdown() -> MarkdownIt:
    return (
        MarkdownIt("commonmark", {"html": True})
        .enable("table")
        .enable("strikethrough")
        .use(footnote_plugin)
        .use(tasklists_plugin)
        # \\( \\), \\[ \\], $ $ and $$ $$ (Pandoc's rule: "$5 or $10" is no
        # math), inline or as blocks, rendered as MathML
        .use(math_plugin)
    )


_CHECKBOX = re.compile(r'<input class="task-list-item-checkbox"[^>]*>')


def _checkbox(m: re.Match[str]) -> str:
    # The sanitizer drops <input>; a task list keeps its state as a character.
    return "\u2611" if "checked" in m.group(0) else "\u2610"


def markdown_to_html(source: str, math_problems: list[MathProblem] | None = None) -> str:
    """Render a Markdown body (no front matter) to HTML, math as MathML.

    CommonMark plus tables, footnotes, strikethrough, task lists and TeX math
    (aggregator.texmath); each formula that does not convert is shown as its
    TeX and appended, once, to `math_problems`.
    """
    env: dict[str, Any] = {}
    html: str = _markdown().render(source, env)
    if math_problems is not None:
        math_problems.extend(env.get(PROBLEMS, ()))
    if "task-list-item-checkbox" in html:
        html = _CHECKBOX.sub(_checkbox, html)
    return html


_HEADING = re.compile(r"<h[1-6][^>]*>(.*?)</h[1-6]>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def first_heading(html: str) -> str | None:
    """The text of the first heading in rendered HTML, for a post with no title."""
    m = _HEADING.search(html)
    if m is None:
        return None
    return fold_space(html_lib.unescape(_TAG.sub("", m.group(1)))) or None


_MORE = re.compile(r"<!--\s*more\s*-->", re.IGNORECASE)


def split_more(html: str) -> str | None:
    """The HTML before a `<!--more-->` marker, or None when there is none.

    Looked for in rendered HTML, so a marker shown inside code (escaped
    there) never counts.
    """
    m = _MORE.search(html)
    return html[: m.start()] if m else None


# Tags and attributes a digest may carry: formatting, links, images, tables,
# code and math. No script, style, iframe, form or event handler ever passes.
_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "details",
    "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
    "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul",
} | MATHML_TAGS  # fmt: skip
_ATTRS = {
    **MATHML_ATTRS,
    "*": {"class", "title", "lang", "dir"},
    "a": {"href", "hreflang"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
    "ol": {"start"},
}


#: the only data: URLs that pass: raster images in <img src>. Never SVG (it can
#: carry script), never a data: link, which a browser would open as a page.
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp)[;,]")
#: what a browser ignores in a URL (WHATWG URL: tab and newline anywhere,
#: C0 controls and space at either end), so "da\tta:" is data: too
_URL_NOISE = re.compile(r"[\t\n\r]")
_C0_AND_SPACE = "".join(map(chr, range(33)))


def _data_images_only(tag: str, attr: str, value: str) -> str | None:
    url = _URL_NOISE.sub("", value).strip(_C0_AND_SPACE).lower()
    if not url.startswith("data:"):
        return value
    return value if tag == "img" and attr == "src" and _DATA_IMAGE.match(url) else None


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Clean untrusted HTML and make its links absolute against `base_url`.

    URLs may be http, https, mailto or relative; data: only for a PNG, JPEG,
    GIF or WebP image in <img src>.
    """
    fragment = reduce_rendered_math(fragment)
    # The per-attribute callback costs time: only a fragment that may hold a
    # data: URL pays it (without "data" in url_schemes nh3 drops them all).
    data = "data:" in fragment.lower()
    if not base_url:
        return _cleaner(data, False).clean(fragment)
    # The sanitizer resolves relative links itself (it calls _rebase_link for
    # each href and src that has no scheme): no second parse of the HTML.
    # The cleaner is shared, so this call's base reaches it by a context
    # variable (one per thread), set only while this call cleans.
    token = _LINK_BASE.set((base_url, _origin(base_url)))
    try:
        return _cleaner(data, True).clean(fragment)
    finally:
        _LINK_BASE.reset(token)


#: the base_url of the sanitize_html call under way, and its _origin
_LINK_BASE: ContextVar[tuple[str, str | None]] = ContextVar("sanitize_link_base")


@cache
def _cleaner(data: bool, rebase: bool) -> nh3.Cleaner:
    """The sanitizer for fragments with (`data`) or without a data: URL, and
    with (`rebase`) or without a base for relative links. Built once: building
    one costs more than cleaning a typical post."""
    return nh3.Cleaner(
        tags=_TAGS,
        attributes=_ATTRS,
        url_schemes={"http", "https", "mailto", "data"} if data else {"http", "https", "mailto"},
        link_rel="noopener noreferrer",
        attribute_filter=_data_images_only if data else None,
        url_relative=_rebase_link if rebase else None,
    )


def _rebase_link(link: str) -> str | None:
    """`link` made absolute against the base of the sanitize_html call under way."""
    base_url, origin = _LINK_BASE.get()
    return _rebase(base_url, origin, link)


#: what makes urljoin do more than prepend the origin to an absolute path:
#: a dot segment, a query or fragment (an empty one is dropped), path
#: parameters (";"), and the tab and newlines urlsplit deletes
_NOT_PLAIN_PATH = re.compile(r"/\.|[?#;\t\n\r]")


def _origin(base_url: str) -> str | None:
    """The "scheme://host" of an http(s) `base_url`, as urljoin spells it; None
    when urljoin must do the work (another scheme, no host, or a base it rejects)."""
    try:
        base = urlsplit(base_url)
    except ValueError:  # urljoin raises the same error, for each link, as before
        return None
    if base.scheme not in ("http", "https") or not base.netloc:
        return None
    return f"{base.scheme}://{base.netloc}"


def _rebase(base_url: str, origin: str | None, link: str) -> str | None:
    """A relative link made absolute, as rebase_links does it (a scheme-relative
    //host/path stays as it is); None, which drops the attribute, for a link
    that does not parse as a URL ("//[x"). `origin` is _origin(base_url)."""
    if origin and link[:1] == "/" and link[1:2] != "/" and not _NOT_PLAIN_PATH.search(link):
        # Fast path, same result: urljoin of an absolute path with nothing to
        # resolve is the base's scheme and host followed by the path.
        return origin + link
    try:
        if urlsplit(link).scheme or link.startswith("//"):
            return link
        return urljoin(base_url, link)
    except ValueError:
        return None


def rebase_links(
    fragment: str,
    href_base: str,
    src_base: str,
    is_file: Callable[[str], bool] | None = None,
) -> str:
    """Make every relative link in `fragment` absolute.

    Images and other embedded resources (src) resolve against `src_base`;
    links (href) against `href_base`, except a link for which `is_file`
    (given the relative link) is true, which resolves against `src_base`
    like an image. Fragment-only links (#fn1) resolve against `href_base`.
    """
    if not fragment.strip() or ("href=" not in fragment and "src=" not in fragment):
        return fragment
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    for el, attr, link, _pos in list(root.iterlinks()):
        try:
            if attr is None or urlsplit(link).scheme or link.startswith("//"):
                continue
        except ValueError:  # "//[x" is no URL: left as written (the sanitizer drops it)
            continue
        if attr == "href" and not (is_file and not link.startswith("#") and is_file(link)):
            base = href_base
        else:
            base = src_base
        el.set(attr, urljoin(base, link))
    inner = (root.text and html_lib.escape(root.text, quote=False)) or ""
    return inner + "".join(
        etree.tostring(child, encoding="unicode", method="html") for child in root
    )


_BLOCK = {
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
    "pre", "table", "tr", "td", "th", "dl", "dt", "dd", "figure", "figcaption", "br", "hr",
    "section", "article", "header", "footer",
}  # fmt: skip


def html_to_text(fragment: str, code_placeholder: str = "[code]") -> str:
    """Plain text of an HTML fragment: blocks joined by single spaces.

    Headings stay as words; a code block becomes `code_placeholder`, an
    inline code span keeps its backticks (so an excerpt never cuts inside
    it), an image becomes its alt text, math stays verbatim with its
    delimiters; runs of white space fold to one space.
    """
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div", parser=_PLAIN_HTML)
    text = _TEXT_OF(root, code=etree.XSLT.strparam(code_placeholder))
    return fold_space(str(text))


#: lxml.html's parser with plain elements: lxml.html's own calls a Python
#: class lookup for each element it hands out, which the text never needs
_PLAIN_HTML = etree.HTMLParser()


# The text of a parsed fragment, in document order: a block is set off by
# spaces, <pre> becomes the placeholder, <img> its alt text, <code> its text
# in backticks; script, style, comments and processing instructions give
# nothing, MathML with a TeX annotation gives its TeX in \( \) or \[ \]
# (XSLT's default rules copy every other text node). An XSLT, run by
# libxslt, rather than a walk over the tree in Python: several times faster.
_TEXT_OF = etree.XSLT(
    etree.XML(
        f"""\
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:param name="code"/>
  <xsl:template match="{"|".join(sorted(_BLOCK - {"pre"}))}">
    <xsl:text> </xsl:text><xsl:apply-templates/><xsl:text> </xsl:text>
  </xsl:template>
  <xsl:template match="pre">
    <xsl:text> </xsl:text><xsl:value-of select="$code"/><xsl:text> </xsl:text>
  </xsl:template>
  <xsl:template match="img">
    <xsl:text> </xsl:text><xsl:value-of select="@alt"/><xsl:text> </xsl:text>
  </xsl:template>
  <xsl:template match="code">
    <xsl:text>`</xsl:text><xsl:value-of select="."/><xsl:text>`</xsl:text>
  </xsl:template>
  <xsl:template match="script|style"/>
  <xsl:template match="math[.//annotation[@encoding='application/x-tex']]">
    <xsl:variable name="tex"
      select="normalize-space(.//annotation[@encoding='application/x-tex'])"/>
    <xsl:choose>
      <xsl:when test="@display='block'">\\[<xsl:value-of select="$tex"/>\\]</xsl:when>
      <xsl:otherwise>\\(<xsl:value-of select="$tex"/>\\)</xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>"""
    )
)


#: characters XML 1.0 cannot carry: C0 controls but tab, LF and CR, and
#: U+FFFE, U+FFFF. Our feeds are XML and lxml refuses them outright, so one
#: such character from a feed would stop every output from being written.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """`text` with each character XML cannot carry replaced by a space."""
    return _NOT_XML.sub(" ", text) if _NOT_XML.search(text) else text


def fold_space(text: str) -> str:
    """Fold every run of white space to one space and trim the ends."""
    # Equal to re.sub(r"\s+", " ", text).strip(): str.split() and re's \s
    # both split on str.isspace() characters, and join is several times faster.
    return " ".join(text.split())


# -- excerpts ------------------------------------------------------------------
#
# The excerpt counts user-perceived characters (grapheme clusters, \X) and
# cuts only at a cluster boundary that is not inside an "atom": a Latin word
# or number (with its in-word hyphens, apostrophes, dots: "Qwen1.5-7B-Chat",
# "don't", "1,000"), a URL, a math span, an inline code span, a [placeholder].
# Han and kana have no spaces between words, so between two of them the cut
# may fall anywhere.

_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}"
_WORD = rf"[[\p{{L}}\p{{N}}\p{{M}}\p{{Pc}}]--[{_CJK}]]+"
_ATOMS = regex.compile(
    "|".join(
        (
            r"\\\(.*?\\\)",  # \( inline math \)
            r"\\\[.*?\\\]",  # \[ display math \]
            r"\$\$.+?\$\$",  # $$ display math $$
            r"(?<![\\\d])\$[^\s$](?:[^$]*?[^\s$])?\$(?!\d)",  # $inline$, Pandoc's rule
            r"`[^`]+`",  # inline code
            r"(?:https?|ftp)://[!-~]+",  # a URL: printable ASCII up to a space or non-ASCII
            r"www\.[!-~]+",
            r"\[[^\[\]]{1,40}\]",  # [code], [1]
            r"【[^【】]{1,40}】",
            rf"{_WORD}(?:['’\-.,:/_+&@]{_WORD})*%?",  # a word or number, in-word punctuation kept
        )
    ),
    regex.V1 | regex.DOTALL,
)
_CLUSTER = regex.compile(r"\X", regex.DOTALL)
#: a cut just after one of these ends a sentence
SENTENCE_ENDS = frozenset("。！？；.!?")
#: not left dangling at the end of an excerpt
_OPENERS = " ([{（【「『《〈“‘-—–,，、:："


def grapheme_count(text: str) -> int:
    """The number of user-perceived characters (grapheme clusters) in `text`."""
    return len(_CLUSTER.findall(text))


def excerpt(text: str, length: int, ellipsis: str = "...") -> str:
    """Cut plain `text` to at most `length` user-perceived characters.

    White space folds to one space. The cut never falls inside a grapheme
    cluster, a Latin word or number, a URL, a math span, an inline code span
    or a bracketed placeholder; between two CJK characters it may fall
    anywhere, and it prefers the end of a sentence (。！？；.!?) found in the
    last fifth of the budget. `ellipsis` (not counted in `length`) is added
    only when text was cut. An atom longer than the whole budget at the very
    start leaves just the ellipsis.
    """
    text = fold_space(text)
    if len(text) <= length:  # code points >= clusters: nothing to cut
        return text
    # ends[i] = offset just after the (i+1)-th cluster, for the first length+1 clusters
    ends: list[int] = []
    for m in _CLUSTER.finditer(text):
        ends.append(m.end())
        if len(ends) > length:
            break
    if len(ends) <= length:
        return text
    limit = ends[length - 1]
    blocked = bytearray(limit + 1)  # blocked[p]: a cut at offset p splits an atom
    for m in _ATOMS.finditer(text):
        if m.start() >= limit:
            break
        for p in range(m.start() + 1, min(m.end(), limit + 1)):
            blocked[p] = 1
    cuts = [(i + 1, p) for i, p in enumerate(ends[:length]) if not blocked[p]]
    if not cuts:
        return ellipsis
    cut = cuts[-1][1]
    # Prefer a sentence end in the last fifth of the budget.
    floor = length - length // 5
    for n, p in reversed(cuts):
        if n < floor:
            break
        if text[p - 1] in SENTENCE_ENDS:
            cut = p
            break
    # Drop a dangling opener or comma, but never the end of an atom
    # (the "-" that ends a URL is part of it).
    while cut > 0 and text[cut - 1] in _OPENERS and not blocked[cut - 1]:
        cut -= 1
    kept = text[:cut]
    if kept.endswith(".") and ellipsis.startswith("."):
        kept = kept[:-1]  # "dinner..." rather than "dinner...."
    return kept + ellipsis if kept else ellipsis


def first_words(text: str, count: int = 10) -> str:
    """The first `count` words of `text`, for an entry with no title."""
    words = fold_space(text).split(" ")
    head = " ".join(words[:count])
    return head if len(words) <= count else head + "..."
