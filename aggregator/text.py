"""Text transformations: Markdown -> HTML, HTML -> text, excerpts.

Pure functions, no IO. Math written as \\( \\), \\[ \\], $ $ or $$ $$ becomes
MathML with its TeX kept as an annotation (aggregator.texmath); Markdown never
eats its backslashes or underscores, and the text of a formula is its TeX.

Sanitizing untrusted HTML (sanitize_html, rebase_links, xml_safe) is in
sanitize.py; they are imported from here as before. Every string these
functions return holds only characters XML 1.0 can carry (xml_safe): our
feeds are XML, and lxml refuses a string with one such character, so one
would stop every output. Their time is linear in their input.
"""

from __future__ import annotations

import html as html_lib
import re
from functools import cache
from typing import Any

import regex
from lxml import etree
from lxml import html as lxml_html
from markdown_it import MarkdownIt
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.tasklists import tasklists_plugin

from aggregator.sanitize import BLOCK, rebase_links, sanitize_html, xml_safe
from aggregator.texmath import PROBLEMS, MathProblem, math_plugin

__all__ = [
    "excerpt",
    "first_heading",
    "first_words",
    "fold_space",
    "grapheme_count",
    "html_to_text",
    "markdown_to_html",
    "rebase_links",
    "sanitize_html",
    "split_more",
    "xml_safe",
]


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


# Bounded ({0,200}): a post repeating the unclosed opening cannot make the
# search quadratic. markdown-it writes the whole tag in about 80 characters.
_CHECKBOX = re.compile(r'<input class="task-list-item-checkbox"[^>]{0,200}>')


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
    html: str = _markdown().render(xml_safe(source), env)  # a lone surrogate stops markdown-it
    if math_problems is not None:
        math_problems.extend(env.get(PROBLEMS, ()))
    if "task-list-item-checkbox" in html:
        html = _CHECKBOX.sub(_checkbox, html)
    # Raw HTML and control characters in the source pass through markdown-it.
    return xml_safe(html)


_HEADING_OPEN = re.compile(r"<h[1-6]")
_HEADING_CLOSE = re.compile(r"</h[1-6]>")
_TAG = re.compile(r"<[^<>]+>")


def first_heading(html: str) -> str | None:
    """The text of the first heading in rendered HTML, for a post with no title."""
    # Three searches, each from where the last ended, rather than one regex
    # (<h[1-6][^>]*>(.*?)</h[1-6]>) that reads to the end of the text once for
    # every opening tag that is never closed: linear, with the same result.
    opening = _HEADING_OPEN.search(html)
    if opening is None:
        return None
    start = html.find(">", opening.end())
    if start < 0:
        return None
    closing = _HEADING_CLOSE.search(html, start + 1)
    if closing is None:
        return None
    inner = _TAG.sub("", html[start + 1 : closing.start()])
    return fold_space(xml_safe(html_lib.unescape(inner))) or None


_MORE = re.compile(r"<!--\s*more\s*-->", re.IGNORECASE)


def split_more(html: str) -> str | None:
    """The HTML before a `<!--more-->` marker, or None when there is none.

    Looked for in rendered HTML, so a marker shown inside code (escaped
    there) never counts.
    """
    m = _MORE.search(html)
    return html[: m.start()] if m else None


def html_to_text(fragment: str, code_placeholder: str = "[code]") -> str:
    """Plain text of an HTML fragment: blocks joined by single spaces.

    Headings stay as words; a code block becomes `code_placeholder`, an
    inline code span keeps its backticks (so an excerpt never cuts inside
    it), an image becomes its alt text, math stays verbatim with its
    delimiters; runs of white space fold to one space. Linear in the size of
    `fragment`: lxml stops reading HTML at 256 levels of nesting, dropping
    what follows (sanitize_html output is never that deep).
    """
    fragment = xml_safe(fragment)
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div", parser=_PLAIN_HTML)
    text = _TEXT_OF(root, code=etree.XSLT.strparam(xml_safe(code_placeholder)))
    # libxml2 decodes "&#1;" to the control character it names.
    return fold_space(xml_safe(str(text)))


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
  <xsl:template match="{"|".join(sorted(BLOCK - {"pre"}))}">
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
#: characters past the cut where an atom that starts before it may end
_ATOM_WINDOW = 4096
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
    text = fold_space(xml_safe(text))  # an entry stored before xml_safe covered its text
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
    # Atoms are looked for in a window: an unclosed "\(" or "`" would
    # otherwise send the search to the end of the text once for each, and an
    # entry's text can be megabytes long. A span closed beyond the window
    # counts as unclosed there; a word reaching past it is still one word.
    window = text[: ends[length] + _ATOM_WINDOW]
    for m in _ATOMS.finditer(window):
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
