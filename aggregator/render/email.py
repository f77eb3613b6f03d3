"""The digest as an email: HTML with CSS inlined (premailer) and plain text."""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from premailer import Premailer

from aggregator.config import SiteConfig
from aggregator.model import DigestEntry
from aggregator.render import environment

TEXT_WIDTH = 72


@dataclass(frozen=True)
class EmailBody:
    """The two parts of one digest email."""

    html: str
    text: str


def render_email(entries: Sequence[DigestEntry], site: SiteConfig, web_url: str) -> EmailBody:
    """Render the email digest of `entries`; `web_url` is its web version."""
    env = environment()
    context = {"site": site, "tz": site.tz, "entries": entries, "web_url": web_url}
    raw_html = env.get_template("email.html").render(**context)
    html = Premailer(
        raw_html,
        keep_style_tags=True,
        strip_important=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    ).transform()
    text = env.get_template("email.txt").render(wrap=_wrap, **context)
    return EmailBody(html=html, text=text)


def _wrap(text: str, indent: str = "") -> str:
    """Wrap plain text at 72 columns; long words (URLs) are never broken."""
    return textwrap.fill(
        text,
        width=TEXT_WIDTH,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )
