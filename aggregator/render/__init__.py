"""Rendering: the one jinja2 Environment, and the outputs built from it.

Only this package knows templates, feedgen and premailer. Renderers are
pure: they take digest values and return {relative path: bytes}; writing
is deliver/'s job.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from aggregator.mathspans import mathml_html


def templates_dir() -> Path:
    """Templates ship inside the wheel; in a source checkout they sit at the top."""
    packaged = Path(__file__).resolve().parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "templates"


@cache
def environment() -> Environment:
    """The jinja2 Environment every renderer uses."""
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(["html", "xml"], default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["isodate"] = lambda d: d.isoformat()
    env.filters["longdate"] = long_date
    # an excerpt's formulas as MathML (the email shows images: render/email.py)
    env.filters["math"] = lambda text: Markup(mathml_html(text))
    return env


def long_date(value: datetime, tz: ZoneInfo, locale: Locale) -> str:
    """A date in the site's timezone and language: 2026年11月21日, November 21, 2026."""
    text: str = format_date(value.astimezone(tz).date(), format="long", locale=locale)
    return text
