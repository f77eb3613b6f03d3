"""The digest as static web pages: index.html, then page/N/index.html."""

from __future__ import annotations

from collections.abc import Sequence

from aggregator.config import SiteConfig
from aggregator.model import Page
from aggregator.render import environment
from aggregator.render.atom import feed_path


def page_path(number: int) -> str:
    """Where page `number` is written, relative to the output dir."""
    return "index.html" if number == 1 else f"page/{number}/index.html"


def _root(number: int) -> str:
    """The relative way back to the output root from page `number`."""
    return "" if number == 1 else "../../"


def page_href(number: int, from_number: int) -> str:
    """A relative link from page `from_number` to page `number`."""
    root = _root(from_number)
    return (root or "./") if number == 1 else f"{root}page/{number}/"


def render_pages(pages: Sequence[Page], site: SiteConfig) -> dict[str, bytes]:
    """Render every digest page; return {path: bytes}."""
    template = environment().get_template("page.html")
    out: dict[str, bytes] = {}
    for page in pages:
        html = template.render(
            site=site,
            tz=site.tz,
            page=page,
            root=_root(page.number),
            canonical=site.url("" if page.number == 1 else f"page/{page.number}/"),
            feed_href=_root(page.number) + feed_path(1),
            page_href=lambda n, _from=page.number: page_href(n, _from),
        )
        out[page_path(page.number)] = html.encode("utf-8")
    return out
