"""Formulas on a built page in a real browser (headless Chromium): MathML with
no script and no web font, at phone and desktop widths, light and dark.

Screenshots are kept under pytest's temporary directory (the `artifacts` fixture).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page

from aggregator import clock
from aggregator.cli import cli
from tests.browser.conftest import no_horizontal_scroll
from tests.conftest import NOW, ROOT

pytestmark = pytest.mark.browser

#: a post newer than the example's, so it leads the first page, whose excerpt
#: holds an inline and a display formula
POST = """---
title: "Flow matching in one line"
date: 2026-11-21T09:00:00+08:00
tags: [数学]
---

插值路径 \\(p_{data}(x)\\) 到噪声：\\[\\mathbf{x}_t=(1-t)\\mathbf{x}_0+t\\varepsilon\\]
写成 $\\frac{1}{2}\\sum_{i=1}^n x_i^2$ 即可。
"""


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example with the post above, built by the real `run`."""
    root = tmp_path_factory.mktemp("math")
    for name in ("content", "examples"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    (root / "content" / "flow-matching-one-line.md").write_text(POST, encoding="utf-8")
    clock.set_now(lambda: NOW)
    try:
        result = CliRunner().invoke(cli, ["--config", str(root / "config.toml"), "run"])
    finally:
        clock.set_now(None)
    assert result.exit_code == 0, result.output
    return root / "public"


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_inline_and_display_math_render_with_a_size(
    public: Path,
    page_at: Callable[..., Page],
    artifacts: Path,
    width: int,
    scheme: str,
) -> None:
    page = page_at((public / "index.html").as_uri(), width, color_scheme=scheme)
    lead = page.locator("main li.entry").first
    assert lead.locator("h2, h3").first.inner_text() == "Flow matching in one line"
    lead.screenshot(path=str(artifacts / f"math-{width}-{scheme}.png"))
    page.screenshot(path=str(artifacts / f"math-page-{width}-{scheme}.png"))
    assert no_horizontal_scroll(page)
    formulas = lead.locator("math")
    assert formulas.count() == 3
    assert [formulas.nth(i).get_attribute("display") for i in range(3)] == [
        "inline",
        "block",
        "inline",
    ]
    text_height = lead.locator("p.excerpt").evaluate(
        "e => parseFloat(getComputedStyle(e).fontSize)"
    )
    for i in range(3):
        box = formulas.nth(i).bounding_box()
        assert box is not None and box["width"] > 10 and box["height"] >= 0.8 * text_height
        assert box["x"] >= 0 and box["x"] + box["width"] <= width
    # A display formula stands on its own line, below the inline one.
    inline, display = formulas.nth(0).bounding_box(), formulas.nth(1).bounding_box()
    assert inline is not None and display is not None
    assert display["y"] >= inline["y"] + inline["height"] - 1
    # The TeX is kept, not shown: the annotation takes no room.
    assert lead.locator("annotation").first.evaluate("e => e.getBoundingClientRect().width") == 0
    # Formulas take the text's colour, so they read in dark mode too.
    colour = "e => getComputedStyle(e).color"
    assert formulas.nth(0).evaluate(colour) == lead.locator("p.excerpt").evaluate(colour)
