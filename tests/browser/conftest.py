"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright.

Playwright's own browser download cannot run here; we point it at the
system Chromium (installed by .ci/run). Screenshots are kept under
pytest's temporary directory (see the `artifacts` fixture) as test artifacts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("AGGREGATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach
# Google's hosts, which this closed network refuses.
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One Chromium for the whole session."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: .ci/run installs Debian's chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page_at(browser: Browser) -> Iterator[object]:
    """Open a page at a given viewport width: page_at(url, width) -> Page."""
    contexts = []

    def open_page(url: str, width: int, height: int = 900, color_scheme: str = "light") -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,  # type: ignore[arg-type]
        )
        contexts.append(context)
        page = context.new_page()
        page.goto(url, wait_until="load")
        return page

    yield open_page
    for c in contexts:
        c.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots are kept for a person to look at after the run."""
    return tmp_path_factory.mktemp("screenshots")


def no_horizontal_scroll(page: Page) -> bool:
    """True when the page fits its viewport's width."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
