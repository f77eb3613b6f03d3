"""The digest page renders in a real browser at phone and desktop widths."""

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


@pytest.mark.parametrize("width", [375, 1280])
def test_index_fits_and_shows_every_title(
    example: Path, fixed_now: datetime, page_at: Callable[..., Page], artifacts: Path, width: int
) -> None:
    CliRunner().invoke(cli, ["--config", str(example), "run"], catch_exceptions=False)
    index = example.parent / "public" / "index.html"
    page = page_at(index.as_uri(), width)
    page.screenshot(path=str(artifacts / f"index-{width}.png"), full_page=True)
    assert no_horizontal_scroll(page)
    assert page.locator("header").first.inner_text().startswith("INCOMING TRANSMISSION")
    titles = page.locator("article h2 a")
    assert titles.count() == 10
    for i in range(titles.count()):
        assert titles.nth(i).is_visible()
