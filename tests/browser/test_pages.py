"""The web pages in a real browser (headless Chromium) at phone and desktop widths.

Screenshots are kept under pytest's temporary directory (the `artifacts`
fixture) for a person to look at after the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from playwright.sync_api import Page, Route

from aggregator.cli import cli
from tests.browser.conftest import no_horizontal_scroll

pytestmark = pytest.mark.browser

PAGES = {
    "index": "index.html",
    "tag": "tags/机器学习/index.html",  # a tag in Chinese: a percent-encoded path
}


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled example, built once for every browser test here."""
    import shutil

    from aggregator import clock
    from tests.conftest import NOW, ROOT

    root = tmp_path_factory.mktemp("example")
    for name in ("content", "examples"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    clock.set_now(lambda: NOW)
    try:
        result = CliRunner().invoke(cli, ["--config", str(root / "config.toml"), "run"])
    finally:
        clock.set_now(None)
    assert result.exit_code == 0, result.output
    return root / "public"


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_fits_and_shows_every_title(
    public: Path, page_at: Callable[..., Page], artifacts: Path, name: str, width: int
) -> None:
    page = page_at((public / PAGES[name]).as_uri(), width)
    page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
    assert no_horizontal_scroll(page)
    header = page.locator("header.masthead")
    assert header.is_visible()
    assert header.inner_text().startswith("INCOMING TRANSMISSION")
    titles = page.locator("main article h2 a")
    # 10 per page; six posts carry the tag 机器学习
    assert titles.count() == (10 if name == "index" else 6)
    for i in range(titles.count()):
        title = titles.nth(i)
        assert title.is_visible()
        box = title.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


def test_keyboard_focus_is_visible(public: Path, page_at: Callable[..., Page]) -> None:
    page = page_at((public / "index.html").as_uri(), 375)
    page.keyboard.press("Tab")  # the skip link comes first, and shows itself
    focused = page.evaluate("document.activeElement.className")
    assert focused == "skip"
    assert page.locator("a.skip").bounding_box()["x"] >= 0  # type: ignore[index]
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"


def test_dark_mode_follows_the_system(public: Path, page_at: Callable[..., Page]) -> None:
    light = page_at((public / "index.html").as_uri(), 1280)
    dark = page_at((public / "index.html").as_uri(), 1280, color_scheme="dark")
    style = "getComputedStyle(document.body).backgroundColor"
    assert light.evaluate(style) == "rgb(251, 250, 247)"
    assert dark.evaluate(style) == "rgb(17, 19, 21)"


def test_the_tag_page_is_reached_by_clicking_a_tag(
    public: Path, page_at: Callable[..., Page]
) -> None:
    page = page_at((public / "index.html").as_uri(), 1280)
    page.locator("main ul.tags a", has_text="机器学习").first.click()
    page.wait_for_load_state()
    assert page.locator("main h1").inner_text() == "标签：机器学习"


POST = "posts/vq-vae-notes/index.html"  # Chinese text, math, code and an image


def open_post(public: Path, page_at: Callable[..., Page], width: int, scheme: str) -> Page:
    """The post page, its images (absolute URLs under base_url) served from the build."""
    page = page_at((public / POST).as_uri(), width, color_scheme=scheme)

    def from_build(route: Route) -> None:
        path = public / unquote(route.request.url.removeprefix("https://blog.example.org/"))
        if path.is_file():
            route.fulfill(path=str(path))
        else:
            route.fulfill(status=404)

    page.route("https://blog.example.org/**", from_build)
    page.reload(wait_until="load")
    return page


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_a_post_page_fits_shows_its_image_and_highlights_its_code(
    public: Path, page_at: Callable[..., Page], artifacts: Path, width: int, scheme: str
) -> None:
    page = open_post(public, page_at, width, scheme)
    page.screenshot(path=str(artifacts / f"post-{width}-{scheme}.png"), full_page=True)
    assert no_horizontal_scroll(page)
    assert page.locator("main h1").inner_text().startswith("VQ-VAE 笔记")
    image = page.locator(".e-content img").first
    image.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('.e-content img').complete")
    assert image.evaluate("i => i.naturalWidth") > 0 and image.is_visible()
    box = image.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    # math typeset by the browser: the formula has a size
    math = page.locator(".e-content math").first
    assert (math.bounding_box() or {"width": 0})["width"] > 0
    # the keyword has a colour of its own, in either scheme, and differs from the text
    colour = "e => getComputedStyle(e).color"
    keyword = page.locator("pre.highlight span.kn").first.evaluate(colour)
    text = page.locator(".e-content p").first.evaluate(colour)
    assert keyword != text
    expected = {"light": "rgb(0, 128, 0)", "dark": "rgb(255, 123, 114)"}[scheme]
    assert keyword == expected
