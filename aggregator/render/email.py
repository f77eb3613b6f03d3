"""The digest as an email: HTML with CSS inlined (premailer) and plain text.

Pure: values in, strings out. What goes in an issue is decided in
newsletter/compose.py, the MIME message is built in newsletter/message.py.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from markupsafe import Markup
from premailer import Premailer

from aggregator.config import SiteConfig
from aggregator.mathspans import email_html, mathml_html
from aggregator.model import DigestEntry
from aggregator.render import environment
from aggregator.render.entries import for_readers
from aggregator.render.words import count_words, locale, words

TEXT_WIDTH = 72


@dataclass(frozen=True)
class EmailBody:
    """The two parts of one digest email."""

    html: str
    text: str


def render_email(
    entries: Sequence[DigestEntry],
    site: SiteConfig,
    web_url: str,
    *,
    issue_key: str = "",
    total: int | None = None,
    unsubscribe_url: str = "",
    math_url: str = "",
) -> EmailBody:
    """Render the email of an issue showing `entries` (newest first).

    `web_url` is the issue's web archive page ("View in browser" and the
    "N more in the web archive" link); the words and dates are in [site]
    language, as on the web pages; `total` is how many entries the issue
    holds, when the email shows only the first few; `unsubscribe_url` is the
    subscriber's own link (a placeholder when the issue is stored);
    `math_url` is where the images of the excerpts' formulas are published
    (absolute, ending in "/"; empty: formulas stay TeX; see aggregator.mathspans).
    """
    env = environment()
    total = len(entries) if total is None else total
    context = _context(entries, site, web_url, issue_key, total)
    context["unsubscribe_url"] = unsubscribe_url or web_url
    # formulas as PNG images under math_url (Gmail and Outlook drop MathML)
    context["math"] = lambda text: Markup(email_html(text, math_url))
    raw_html = env.get_template("email.html").render(**context)
    html = Premailer(
        raw_html,
        # The plain <style> is inlined and dropped; the data-premailer="ignore"
        # one (media queries, dark mode) is kept verbatim, !important and all.
        keep_style_tags=False,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        allow_network=False,
        # Keep width="600" on the container: Outlook (Word) reads the attribute, not
        # max-width, and premailer would otherwise copy width:100% from the CSS.
        disable_basic_attributes=["width"],
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    html = _restore_doctype(html)
    text = env.get_template("email.txt").render(wrap=wrap, **context)
    return EmailBody(html=html, text=text)


def render_archive(
    entries: Sequence[DigestEntry], site: SiteConfig, web_url: str, *, issue_key: str
) -> str:
    """The web archive page of an issue: the email's layout with every entry."""
    context = _context(entries, site, web_url, issue_key, len(entries))
    context["math"] = lambda text: Markup(mathml_html(text))  # a web page: MathML
    return environment().get_template("issue.html").render(**context)


def _context(
    entries: Sequence[DigestEntry], site: SiteConfig, web_url: str, issue_key: str, total: int
) -> dict[str, object]:
    # Links through the URL policy, as on every output (render/entries.py).
    entries = for_readers(entries)
    # The same words and dates as the web pages (render/words.py), in [site] language.
    lang = site.language
    table = words(lang)
    count = count_words(lang, "new_posts", total)
    titles = " · ".join(item.stored.entry.title for item in entries[:3])
    more = total - len(entries)
    return {
        "site": site,
        "tz": site.tz,
        "locale": locale(lang),
        "words": table,
        "entries": entries,
        "more": more,
        "more_label": count_words(lang, "more_in_archive", more),
        "archive_url": web_url,
        "web_url": web_url,
        "issue_key": issue_key,
        "issue_label": f"{issue_key} · {count}" if issue_key else count,
        "issue_of": table["issue_of"].format(issue=issue_key),
        "why_received": table["why_received"].format(title=site.title),
        "title": f"{site.title} · {issue_key}" if issue_key else site.title,
        "preheader": table["preheader"].format(count=count, titles=titles) if titles else count,
    }


def _restore_doctype(html: str) -> str:
    """premailer (lxml) may drop the doctype; clients need it for standards mode."""
    if html.lstrip().lower().startswith("<!doctype"):
        return html
    return "<!doctype html>\n" + html


_RUN = re.compile(r"\s+|\S+")
#: CJK punctuation that must not begin a line: it stays with what precedes it
_CLOSING = set("，。、；：？！）」』》〉】〕…·％")


def _width(ch: str) -> int:
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def wrap(text: str, indent: str = "", subsequent: str | None = None) -> str:
    """Wrap plain text at 72 columns for the text part.

    Counts a wide (CJK) character as two columns and may break between any
    two of them, as CJK typesetting does (never before closing punctuation);
    Latin words and URLs are never broken (a URL longer than a line gets a
    line of its own). Time linear in the length of `text`: a title of
    megabytes without a space is one long line.
    """
    subsequent = indent if subsequent is None else subsequent
    lines: list[str] = []
    line, col = [indent], len(indent)
    filled = bool(indent.strip())  # the line holds more than white space
    pending_space = False
    for m in _RUN.finditer(text.strip()):
        run = m.group(0)
        if run[0].isspace():
            pending_space = True
            continue
        for word, width in _words(run):
            sep = 1 if pending_space and filled else 0
            if col + sep + width > TEXT_WIDTH and filled:
                lines.append("".join(line).rstrip())
                line, col, sep = [subsequent], len(subsequent), 0
            line += (" " * sep, word)
            col += sep + width
            filled = True
            pending_space = False
    text_of_line = "".join(line)
    if text_of_line.strip():
        lines.append(text_of_line.rstrip())
    return "\n".join(lines)


def _words(run: str) -> list[tuple[str, int]]:
    """The unbreakable pieces of a run of non-space characters, with their
    widths in columns: a URL or a Latin word whole; a break may come before a
    CJK character (not closing punctuation) and between CJK and Latin."""
    if run.isascii():  # no wide character: one word
        return [(run, len(run))]
    widths = [_WIDTHS.get(ch) or _width_of(ch) for ch in run]
    if run.find("://", 1, len(run) - 1) >= 0:  # a URL: characters on both sides of "://"
        return [(run, sum(widths))]
    starts = [0]
    previous_wide = widths[0] == 2
    for i in range(1, len(run)):
        wide = widths[i] == 2
        if (wide and run[i] not in _CLOSING) or (previous_wide and run[i].isalnum()):
            starts.append(i)
        previous_wide = wide
    starts.append(len(run))
    return [(run[a:b], sum(widths[a:b])) for a, b in pairwise(starts)]


#: _width of each character met so far (the text of an email is mostly a
#: few hundred distinct characters)
_WIDTHS: dict[str, int] = {}


def _width_of(ch: str) -> int:
    w = _WIDTHS[ch] = _width(ch)
    return w
