"""No dead links: every internal link in the built bundled example leads to a
file the build wrote. Internal: a relative link, one from the site's root, or
an absolute one under base_url; in every HTML page (href and src of every
element) and in every feed (Atom, RSS, JSON Feed: their links and the links
inside the entries' content)."""

from __future__ import annotations

import html
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from lxml import etree
from lxml import html as lxml_html

from tests.integration.test_site_outputs import BASE, copy_example, run

#: served by the daemon, not a file (RFC 8058 one-click unsubscribe)
DAEMON = (BASE + "unsubscribe/",)
_UNDER_BASE = re.compile(re.escape(BASE) + r"[^\s\"'<>\\)\]]*")


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config_path = copy_example(tmp_path_factory.mktemp("site"))
    run(config_path)
    return config_path.parent / "public"


def target(public: Path, page: Path, link: str) -> Path | None:
    """The file an internal link on `page` opens; None for an external link."""
    if link.startswith(BASE):
        path = unquote(urlsplit(link).path)
        return _file(public / path.lstrip("/"), path)
    if urlsplit(link).scheme or link.startswith("//"):
        return None  # another site, mailto:, data:
    if link.startswith("/"):
        path = unquote(urlsplit(link).path)
        return _file(public / path.lstrip("/"), path)
    path = unquote(urlsplit(urljoin(page.as_uri(), link)).path)
    return _file(Path(path), path)


def _file(path: Path, url_path: str) -> Path:
    # a directory address is served as its index.html
    return path / "index.html" if url_path.endswith("/") or path.is_dir() else path


def values(page: Path, xpath: str) -> list[str]:
    """The attribute values `xpath` (ending in /@name) selects in the HTML file `page`."""
    found = lxml_html.fromstring(page.read_bytes()).xpath(xpath)
    assert isinstance(found, list)
    return [str(v) for v in found]


def html_links(page: Path) -> list[str]:
    return values(page, "//*/@href") + values(page, "//*/@src")


def fragments(page: Path) -> tuple[set[str], list[str]]:
    ids = set(values(page, "//@id"))
    return ids, [h[1:] for h in values(page, "//a/@href") if h.startswith("#")]


def feed_links(feed: Path) -> list[str]:
    """Every address under base_url a feed names: its own links and its content's."""
    if feed.suffix == ".json":
        text = json.dumps(json.loads(feed.read_bytes()), ensure_ascii=False)
    else:
        etree.parse(str(feed))  # well-formed, or the check below means nothing
        text = feed.read_text("utf-8")
    # twice: the content of an entry is HTML escaped inside XML
    return _UNDER_BASE.findall(html.unescape(html.unescape(text)))


def preview_issue_page(public: Path) -> str:
    """The "view in browser" address of the email preview (email.html): the web
    page of an issue not yet sent, which the build does not write (yet)."""
    found = [
        h for h in values(public / "email.html", "//a/@href") if h.startswith(BASE + "issues/")
    ]
    assert found, "the preview links to its issue's web page"
    return found[0]


def dead_links(public: Path, known: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    checked, dead = 0, []
    pages = sorted(public.rglob("*.html"))
    feeds = sorted([*public.rglob("*.atom"), *public.rglob("*.xml"), *public.rglob("*.json")])
    for page, links in [
        *((p, html_links(p)) for p in pages),
        *((f, feed_links(f)) for f in feeds if not f.name.startswith(".")),
    ]:
        for link in links:
            if link.startswith("#") or link.startswith(DAEMON) or link in known:
                continue
            file = target(public, page, link)
            if file is None:
                continue
            checked += 1
            if not file.is_file():
                dead.append(f"{page.relative_to(public)}: {link}")
    return checked, dead


def test_every_internal_link_of_the_example_site_leads_to_a_file(public: Path) -> None:
    checked, dead = dead_links(public, known=(preview_issue_page(public),))
    assert dead == []
    # every page, post page, tag page, feed and the email were walked
    assert checked > 1000, checked


@pytest.mark.xfail(
    strict=True,
    reason="issue 15 item 5, not done: the email preview's 'view in browser' links to the "
    "web page of the issue it previews, which is written only once the issue is sent",
)
def test_the_email_previews_issue_page_exists(public: Path) -> None:
    file = target(public, public / "email.html", preview_issue_page(public))
    assert file is not None and file.is_file()


def test_every_in_page_link_has_its_target(public: Path) -> None:
    for page in public.rglob("*.html"):
        ids, wanted = fragments(page)
        assert set(wanted) <= ids, page


def test_the_checker_finds_a_dead_link(public: Path, tmp_path: Path) -> None:
    """The check can fail: a removed post page makes the links to it dead."""
    copy = tmp_path / "public"
    shutil.copytree(public, copy)
    shutil.rmtree(copy / "posts/vq-vae-notes")
    _, dead = dead_links(copy, known=(preview_issue_page(copy),))
    gone = {d.split(": ")[0] for d in dead if "vq-vae-notes" in d}
    # the digest page and the tag page that list it, its neighbours, the feeds
    assert "tags/vq-vae/index.html" in gone and {"index.html", "page/2/index.html"} & gone
    assert any(g.startswith("posts/") for g in gone), gone
    assert "tags/vq-vae.atom" in gone
