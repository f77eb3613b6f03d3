"""`aggregator feeds ...` and `ingest --all` on a copy of the example, against a local server."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from lxml import etree
from pytest_httpserver import HTTPServer

from aggregator import config as config_mod
from aggregator.cli import cli
from aggregator.store import Store
from tests.integration.feedkit import atom

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My reader</title></head><body>
  <outline text="Science">
    <outline text="Lab" title="Lab notes" type="rss" xmlUrl="{lab}"/>
  </outline>
  <outline text="Direct" type="rss" xmlUrl="{direct}" category="/news"/>
  <outline text="A folder with no feeds"/>
</body></opml>"""


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def test_add_discovers_the_feed_edits_config_in_place_and_remove_hides_entries(
    example: Path, fixed_now: datetime, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/blog/").respond_with_data(
        '<html><head><link rel="alternate" type="application/atom+xml" href="feed.atom">'
        "</head><body>A blog</body></html>",
        content_type="text/html",
    )
    httpserver.expect_request("/blog/feed.atom").respond_with_data(
        atom(2, title="Lab Blog", prefix="lab")
    )
    page, feed = httpserver.url_for("/blog/"), httpserver.url_for("/blog/feed.atom")
    before = example.read_text(encoding="utf-8")

    added = run(example, "feeds", "add", page, "--tag", "lab")
    assert added.exit_code == 0, added.output
    assert f"links the feed {feed}" in added.output
    text = example.read_text(encoding="utf-8")
    assert text.startswith(before.split("[database]")[0][:200])  # comments and order kept
    assert "# Tags added to every entry of this feed" in text
    assert f'url = "{feed}"' in text and 'name = "Lab Blog"' in text
    assert run(example, "feeds", "add", feed).output.startswith("already followed")

    result = run(example, "run")
    assert result.exit_code == 0, result.output
    assert "feeds   2: 2 fetched; " in result.output
    index = (example.parent / "public" / "index.html").read_text(encoding="utf-8")
    assert "lab entry 0" in index

    listed = run(example, "feeds", "list").output
    assert "Lab Blog" in listed and "Friend's Notebook" in listed and "2 feeds" in listed

    removed = run(example, "feeds", "remove", feed)
    assert removed.exit_code == 0 and "entries are kept" in removed.output
    assert feed not in example.read_text(encoding="utf-8")
    run(example, "run")
    index = (example.parent / "public" / "index.html").read_text(encoding="utf-8")
    assert "lab entry 0" not in index
    store = Store.open(config_mod.load(example).database.url)
    try:
        assert store.entry_count() == 21 + 2  # the removed feed's entries are still stored
    finally:
        store.close()
    assert run(example, "feeds", "remove", feed).exit_code == 1


def test_import_and_export_opml_round_trip(
    example: Path, tmp_path: Path, httpserver: HTTPServer
) -> None:
    lab, direct = httpserver.url_for("/lab.xml"), httpserver.url_for("/direct.xml")
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML.format(lab=lab, direct=direct), encoding="utf-8")
    result = run(example, "feeds", "import", str(opml))
    assert result.exit_code == 0, result.output
    assert "imported 2 feeds" in result.output
    again = run(example, "feeds", "import", str(opml))
    assert "imported 0 feeds" in again.output and "(2 already followed)" in again.output

    out = tmp_path / "out.opml"
    assert run(example, "feeds", "export", "-o", str(out)).exit_code == 0
    root = etree.fromstring(out.read_bytes())
    assert root.get("version") == "2.0"
    outlines = {o.get("xmlUrl"): o for o in root.iter("outline")}
    assert set(outlines) >= {lab, direct}
    assert outlines[lab].get("title") == "Lab notes" and outlines[lab].get("category") == "Science"
    assert outlines[direct].get("category") == "news"
    assert len(outlines) == 3  # and the example's friend feed


def test_import_of_a_broken_opml_names_the_file_and_line(example: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.opml"
    bad.write_text('<opml version="2.0">\n<body>\n<outline xmlUrl="x">\n</opml>', encoding="utf-8")
    result = run(example, "feeds", "import", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:" in result.output and "not valid OPML" in result.output


def test_ingest_prints_failures_and_a_summary_and_all_refetches(
    example: Path, fixed_now: datetime, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/gone").respond_with_data("", status=410)
    gone = httpserver.url_for("/gone")
    with example.open("a", encoding="utf-8") as f:
        f.write(f'\n[[feeds]]\nurl = "{gone}"\nname = "Gone"\n')
    first = run(example, "ingest")
    assert first.exit_code == 1
    assert f"FAILED {gone}: HTTP 410 GONE: the feed is gone" in first.output
    assert "feeds   2: 1 fetched, 1 failed; 6 new, 0 changed entries" in first.output
    second = run(example, "ingest")
    assert "feeds   2: 1 not due, 1 disabled" in second.output
    third = run(example, "ingest", "--all")
    assert "feeds   2: 1 unchanged, 1 disabled" in third.output
    status = run(example, "status").output
    assert "disabled: HTTP 410" in status
