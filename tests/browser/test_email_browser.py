"""The email HTML in a real browser at 600 px (desktop clients) and 375 px (phones)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page

from aggregator.cli import cli
from tests.browser.conftest import no_horizontal_scroll

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [600, 375])
def test_email_fits_and_shows_every_entry(
    example: Path, fixed_now: datetime, page_at: Callable[..., Page], artifacts: Path, width: int
) -> None:
    result = CliRunner().invoke(cli, ["--config", str(example), "run"], catch_exceptions=False)
    assert result.exit_code == 0
    email_html = example.parent / "public" / "email.html"
    page = page_at(email_html.as_uri(), width)
    page.screenshot(path=str(artifacts / f"email-{width}.png"), full_page=True)
    assert no_horizontal_scroll(page)
    body = page.locator("body").inner_text()
    assert body.lstrip().startswith("INCOMING TRANSMISSION")
    titles = page.locator("h2 a")
    assert titles.count() == 10
    for i in range(titles.count()):
        link = titles.nth(i)
        assert link.is_visible()
        box = link.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    container = page.locator("table.container").bounding_box()
    assert container is not None and container["width"] <= min(width, 600)
    # The preheader (in the site's language) is for the inbox list only, never shown.
    preheader = page.get_by_text("10 篇新文章：")
    assert preheader.count() == 1 and not preheader.is_visible()
