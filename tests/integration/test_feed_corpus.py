"""feedparser's own ~2,000 test feeds, served from a local server and ingested at once.

No crash; every entry normalized (a guid, a title or text, aware UTC dates);
and no output built from them (Atom, pages, email) carries a script element,
an event-handler attribute or a javascript: URL.

The corpus is feedparser's sdist, fetched once with pip into pytest's cache
directory (PyPI is reachable in CI).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import xml.sax
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import pipeline
from tests.integration.feedkit import make_config, opened

VERSION = "6.0.14"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ATOM_NS = "{http://www.w3.org/2005/Atom}"
RASTER = re.compile(r"data:image/(png|jpeg|gif|webp)[;,]")


@pytest.fixture(scope="session")
def corpus(request: pytest.FixtureRequest) -> Path:
    """The tests/ directory of feedparser's sdist, downloaded once and cached."""
    cache = Path(request.config.cache.mkdir(f"feedparser-{VERSION}-corpus"))
    tests = cache / f"feedparser-{VERSION}" / "tests"
    if not tests.is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"feedparser=={VERSION}", "-d", str(cache)],
            check=True, timeout=300,
        )  # fmt: skip
        with tarfile.open(cache / f"feedparser-{VERSION}.tar.gz") as tar:
            members = [m for m in tar.getmembers() if "/tests/" in m.name and m.isfile()]
            tar.extractall(cache, members=members, filter="data")
    return tests


def bad_markup(root: etree._Element, where: str) -> list[str]:
    """Scripts, event handlers and javascript: URLs in an HTML tree."""
    found = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag.lower().rsplit("}", 1)[-1] == "script":
            found.append(f"{where}: <script>")
        for raw_name, raw_value in el.attrib.items():
            name, value = str(raw_name), str(raw_value)
            if name.lower().startswith("on"):
                found.append(f"{where}: {name}= on <{el.tag}>")
            squashed = re.sub(r"[\x00-\x20]+", "", value).lower()
            if squashed.startswith(("javascript:", "vbscript:")):
                found.append(f"{where}: {name}={value!r}")
            # data: only for a raster image in <img src>
            image = str(el.tag).lower() == "img" and name.lower() == "src"
            if squashed.startswith("data:") and not (image and RASTER.match(squashed)):
                found.append(f"{where}: {name}={value[:40]!r}")
    return found


def check_atom(path: Path) -> list[str]:
    root = etree.parse(str(path)).getroot()
    found = []
    for el in root.iter(f"{ATOM_NS}content", f"{ATOM_NS}summary", f"{ATOM_NS}title"):
        if el.get("type") == "html" and (el.text or "").strip():
            frag = lxml_html.fragment_fromstring(el.text, create_parent="div")
            found += bad_markup(frag, f"{path.name} <{el.tag}>")
        found += bad_markup(el, path.name)
    return found


def check_html(path: Path) -> list[str]:
    return bad_markup(lxml_html.parse(str(path)).getroot(), str(path))


@pytest.mark.slow
def test_every_corpus_feed_is_ingested_and_outputs_are_safe(corpus: Path, tmp_path: Path) -> None:
    files = sorted(p for p in corpus.rglob("*") if p.suffix in (".xml", ".rdf", ".gz", ".z"))
    assert len(files) > 1500

    def serve(request: Request) -> Response:
        path = (corpus / request.path.lstrip("/")).resolve()
        if corpus not in path.parents or not path.is_file():
            return Response("", status=404)
        return Response(path.read_bytes(), content_type="application/xml")

    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request(re.compile(r"/.*")).respond_with_handler(serve)
    server.start()
    try:
        urls = [server.url_for("/" + p.relative_to(corpus).as_posix()) for p in files]
        config = make_config(tmp_path, urls, concurrency=32, per_host=32)
        # Few large pages: the same entries are checked, with fewer files to render.
        config = replace(config, digest=replace(config.digest, page_size=500))
        with opened(config) as store:
            report = pipeline.ingest(config, store, NOW)
            entries = store.visible_entries(NOW)
            pipeline.build(config, store, NOW)
    finally:
        server.stop()

    # About half the corpus tests feed-level elements only (no entries); a few
    # files are not feeds at all (CDF, ill-formed) and are reported as such.
    feeds = [r for r in report.results if r.source.key != config.content_source.key]
    assert len(feeds) == len(files)
    assert len([r for r in feeds if r.ok]) > 0.98 * len(files)
    assert len([r for r in feeds if r.items]) > 1000
    assert len(entries) > 1000
    for s in entries:
        e = s.entry
        assert e.guid, s
        assert e.title or e.text, s
        for d in (e.published, e.updated, s.first_seen):
            assert d.tzinfo is not None and d.utcoffset() == UTC.utcoffset(d) and d <= NOW

    public = config.output.dir
    outputs = list(public.rglob("*.atom")) + list(public.rglob("*.html"))
    assert len(outputs) > 5
    problems = []
    for path in outputs:
        problems += check_atom(path) if path.suffix == ".atom" else check_html(path)
    assert problems == []


def test_the_output_check_finds_what_it_looks_for() -> None:
    frag = lxml_html.fragment_fromstring(
        '<p><a href=" java\tscript:alert(1)" onclick="x()">a</a><script>y()</script>'
        '<img src="data:image/svg+xml,x"><a href="data:image/png,x">b</a>'
        '<img src="data:image/png;base64,AAAA"></p>',
        create_parent="div",
    )
    assert len(bad_markup(frag, "t")) == 5


@pytest.mark.slow
def test_our_sax_driver_reads_every_corpus_feed_as_the_stock_one_does(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aggregator gives feedparser Expat with text buffering on (faster): the
    parsed feeds must be exactly what feedparser's stock driver gives."""
    import feedparser
    import feedparser.api

    from aggregator.sources import expat_driver, parse

    files = sorted(p for p in corpus.rglob("*") if p.suffix in (".xml", ".rdf"))
    assert len(files) > 1500
    bodies = [p.read_bytes() for p in files]

    def read_all() -> list[Any]:
        return [
            feedparser.parse(b, sanitize_html=False, resolve_relative_uris=False) for b in bodies
        ]

    # feedparser really gets ours (make_parser skips a driver that fails to load).
    loaded = xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS)
    assert isinstance(loaded, expat_driver.BufferedExpatParser)
    ours = read_all()
    stock = [d for d in feedparser.api.PREFERRED_XML_PARSERS if d != parse.SAX_DRIVER]
    monkeypatch.setattr(feedparser.api, "PREFERRED_XML_PARSERS", stock)
    theirs = read_all()
    differ = [
        str(path)
        for path, a, b in zip(files, ours, theirs, strict=True)
        if (a.entries, a.feed, a.bozo, a.version, a.encoding)
        != (b.entries, b.feed, b.bozo, b.version, b.encoding)
    ]
    assert differ == []
    assert sum(len(a.entries) for a in ours) > 1000
