"""A page per own post, built from the bundled example: it sits where every
link to the post points, shows the whole post, and links on to the rest."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urljoin

import pytest
from lxml import html as lxml_html
from starlette.testclient import TestClient

from aggregator.web import create_app
from tests.integration.test_site_outputs import BASE, copy_example, local, run
from tests.integration.test_stale_outputs import build, edit


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config_path = copy_example(tmp_path_factory.mktemp("site"))
    run(config_path)
    return config_path.parent / "public"


def page(path: Path) -> lxml_html.HtmlElement:
    return lxml_html.fromstring(path.read_bytes())


def own_post_links(public: Path) -> dict[str, str]:
    """{permalink: title} of every own post the digest pages link to."""
    found: dict[str, str] = {}
    for path in [public / "index.html", *sorted(public.glob("page/*/index.html"))]:
        for a in page(path).cssselect(".entry-title a"):
            if a.get("href").startswith(BASE + "posts/"):
                found[a.get("href")] = a.text_content()
    return found


def meta(doc: lxml_html.HtmlElement, key: str) -> str | None:
    found = doc.xpath(f"//meta[@property='{key}' or @name='{key}']/@content")
    return found[0] if found else None


def resolve(path: Path, href: str) -> Path:
    """The file a relative link on the page at `path` opens (file://, as a browser does)."""
    return Path(unquote(urljoin(path.as_uri(), href).removeprefix("file://")))


def test_every_own_post_the_digest_links_to_has_its_page_there(public: Path) -> None:
    links = own_post_links(public)
    assert len(links) == 15  # the example's published posts
    chinese = [u for u in links if "%E9" in u]
    assert chinese, "the Chinese slug is linked percent-encoded"
    for url, title in links.items():
        path = local(public, url)
        assert path.name == "" or path.is_dir(), url
        doc = page(path / "index.html")
        assert doc.cssselect("h1.p-name")[0].text_content() == title
        assert doc.xpath("//link[@rel='canonical']/@href") == [url]
        assert meta(doc, "og:url") == url and meta(doc, "og:type") == "article"
    assert (public / "posts/随笔-冬天/index.html").is_file()


def test_a_post_page_says_which_language_its_post_is_in(public: Path) -> None:
    english = page(public / "posts/reading-benchmark-claims/index.html")
    assert english.get("lang") == "en"
    # the site's own words around it stay marked as the site's language (zh-CN)
    assert english.cssselect("header.masthead")[0].get("lang") == "zh-CN"
    assert english.cssselect("nav.post-nav")[0].get("lang") == "zh-CN"
    chinese = page(public / "posts/随笔-冬天/index.html")
    assert (
        chinese.get("lang") == "zh-CN"
        and chinese.cssselect("header.masthead")[0].get("lang") is None
    )


def test_a_post_page_shows_the_whole_post_with_its_date_tags_and_image(public: Path) -> None:
    path = public / "posts/vq-vae-notes/index.html"
    doc = page(path)
    assert doc.get("lang") == "zh-CN"
    # the date as the digest shows it, in the site's language
    digest = page(public / "index.html")
    shown = {
        a.get("href"): a.xpath("ancestor::article//time")[0].text_content()
        for a in digest.cssselect(".entry-title a")
    }
    date = doc.cssselect(".post-head time")[0].text_content()
    assert date == "2026年8月4日"
    if BASE + "posts/vq-vae-notes/" in shown:
        assert shown[BASE + "posts/vq-vae-notes/"] == date
    # the whole content: every section, the code, the math as MathML
    content = doc.cssselect(".e-content")[0]
    assert [h.text_content() for h in content.cssselect("h2")][-1] == "小结"
    code = content.cssselect("pre code")[0]
    assert "straight-through" in code.text_content()
    # highlighted on the server: keywords are marked, no script on the page
    assert code.getparent().get("class") == "highlight"
    assert [k.text for k in code.cssselect("span.kn")][:1] == ["import"]
    assert not doc.xpath("//script")
    assert content.xpath(".//*[local-name()='math']")
    # the image, lazy, with its alt text, and as the card's image
    img = content.cssselect("img")[0]
    assert img.get("loading") == "lazy" and img.get("alt") == "A diagram of the codebook lookup"
    assert local(public, img.get("src")).is_file()
    assert meta(doc, "og:image") == img.get("src")
    assert meta(doc, "twitter:card") == "summary_large_image"
    assert meta(doc, "twitter:title") == doc.cssselect("h1")[0].text_content()
    assert meta(doc, "og:description") and meta(doc, "og:description") == meta(doc, "description")
    # tags lead to their tag pages, which list this post
    tags = doc.cssselect(".post-head .tags a")
    assert [a.text_content() for a in tags][:2] == ["机器学习", "VQ-VAE"]
    for a in tags:
        tag_page = resolve(path, a.get("href"))
        assert tag_page.is_file(), a.get("href")
    assert "posts/vq-vae-notes/" in resolve(path, tags[1].get("href")).read_text("utf-8")


def test_code_colours_come_with_the_page_only_where_there_is_code(public: Path) -> None:
    with_code = (public / "posts/vq-vae-notes/index.html").read_text("utf-8")
    assert ".highlight .kn {" in with_code
    dark = with_code.split("@media (prefers-color-scheme: dark)")
    assert any(".highlight .kn {" in part for part in dark[2:]), "a dark style for the code"
    without = (public / "posts/随笔-冬天/index.html").read_text("utf-8")
    assert "<pre" not in without and ".highlight" not in without


def test_a_post_page_is_an_h_entry_and_digest_pages_are_an_h_feed(public: Path) -> None:
    doc = page(public / "posts/kv-cache-estimation/index.html")
    entries = doc.find_class("h-entry")
    assert len(entries) == 1
    e = entries[0]
    assert e.find_class("p-name")[0].text_content().strip()
    assert e.find_class("u-url")[0].get("href") == BASE + "posts/kv-cache-estimation/"
    assert re.match(r"\d{4}-\d\d-\d\dT", e.find_class("dt-published")[0].get("datetime"))
    assert len(e.find_class("e-content")[0].text_content()) > 200
    assert e.find_class("p-category")
    digest = page(public / "index.html")
    feed = digest.find_class("h-feed")
    assert len(feed) == 1
    items = feed[0].find_class("h-entry")
    assert len(items) == len(digest.cssselect(".entry"))
    assert all(i.find_class("p-name") and i.find_class("dt-published") for i in items)


def test_previous_and_next_walk_every_post_and_lead_back_to_the_digest(public: Path) -> None:
    links = own_post_links(public)
    newest = local(public, next(iter(links))) / "index.html"
    seen = [newest]
    doc = page(newest)
    assert not doc.cssselect(".post-nav .newer")
    while older := doc.cssselect(".post-nav .older a"):
        path = resolve(seen[-1], older[0].get("href"))
        doc = page(path)
        # and back again
        newer = doc.cssselect(".post-nav .newer a")[0]
        assert resolve(path, newer.get("href")) == seen[-1]
        seen.append(path)
    assert [local(public, u) / "index.html" for u in links] == seen
    back = doc.cssselect(".post-nav .back a")[0]
    assert resolve(seen[-1], back.get("href")) == public / "index.html"


def test_a_deleted_post_loses_its_page_and_its_neighbours_stop_linking_it(
    example: Path,
) -> None:
    public = example.parent / "public"
    build(example)
    assert (public / "posts/vq-vae-notes/index.html").is_file()
    (example.parent / "content/vq-vae-notes.md").unlink()
    report = build(example)
    assert "posts/vq-vae-notes/index.html" in report.removed
    assert not (public / "posts/vq-vae-notes").exists()
    for path in public.glob("posts/*/index.html"):
        assert "vq-vae-notes" not in path.read_text("utf-8"), path
    # an edited post: its page says the new words
    edit(example.parent / "content/kv-cache-estimation.md", "\n\n", "\n\nEDITED-MARKER\n\n")
    report = build(example)
    assert "posts/kv-cache-estimation/index.html" in report.written
    assert "EDITED-MARKER" in (public / "posts/kv-cache-estimation/index.html").read_text("utf-8")


def test_a_post_whose_page_would_overwrite_another_output_is_refused_by_name(
    example: Path,
) -> None:
    public = example.parent / "public"
    edit(example, 'permalink = "/posts/{slug}/"', 'permalink = "/{slug}/"')
    (example.parent / "content/tags.md").write_text(
        "---\ntitle: A post called tags\ndate: 2026-11-01T10:00:00+08:00\n---\n\nHello.\n",
        encoding="utf-8",
    )
    report = build(example)
    refused = [f for f in report.failures if f.location == "tags/index.html"]
    assert len(refused) == 1 and "another output" in refused[0].reason
    # the tag index is still the tag index; the other posts got their pages
    assert "A post called tags" not in (public / "tags/index.html").read_text("utf-8")
    assert (public / "kv-cache-estimation/index.html").is_file()


def test_an_unknown_address_gets_the_404_page_in_the_sites_language(public: Path) -> None:
    client = TestClient(create_app(public))
    for address in ("/posts/no-such-post/", "/nope.html", "/tags/nope/page/9/"):
        r = client.get(address)
        assert r.status_code == 404, address
        doc: lxml_html.HtmlElement = lxml_html.fromstring(r.content)
        assert doc.get("lang") == "zh-CN"
        assert doc.cssselect("main h1")[0].text_content() == "找不到这个页面"
        assert meta(doc, "robots") == "noindex" and not doc.xpath("//link[@rel='canonical']")
        # its links work from wherever it is shown: the front page, the tags, the feeds
        hrefs = [a.get("href") for a in doc.cssselect("a[href]") if a.get("href") != "#main"]
        assert "/index.html" in hrefs and "/tags/index.html" in hrefs
        for href in hrefs:
            assert client.get(href).status_code == 200, href
    # a post page itself is found, its Chinese slug percent-encoded as the digest links it
    assert client.get("/posts/%E9%9A%8F%E7%AC%94-%E5%86%AC%E5%A4%A9/").status_code == 200
