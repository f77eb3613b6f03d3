"""The CLI on a temporary copy of the bundled example, outputs checked by parsing."""

from __future__ import annotations

import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

import feedparser
from click.testing import CliRunner, Result

from aggregator.cli import cli

MIRRORED_TITLE_WORD = "benchmark"  # the friend's feed mirrors reading-benchmark-claims.md


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


class Page(HTMLParser):
    """Collects the text and the entry titles (h2 links) of a digest page."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.titles: list[str] = []
        self.links: list[str] = []
        self._in_h2 = False
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "h2":
            self._in_h2 = True
            self.titles.append("")
        if tag == "script":
            self.scripts += 1
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_h2 = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_h2:
            self.titles[-1] += data


def parse_page(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def all_titles(public: Path) -> list[str]:
    titles = []
    # the digest pages only: tag pages (tags/<slug>/) list entries again
    for page in [public / "index.html", *sorted(public.glob("page/*/index.html"))]:
        titles += [t.strip() for t in parse_page(page).titles]
    return titles


def test_run_builds_every_output_once_per_article(example: Path, fixed_now: datetime) -> None:
    result = run(example, "run")
    assert result.exit_code == 0, result.output
    # The friend's syndicated copy of one post, counted in words a person reads.
    assert "dedupe: 1 copy linked to their canonical entry" in result.output
    public = example.parent / "public"
    for name in ("feed.atom", "index.html", "email.html", "email.txt"):
        assert (public / name).is_file(), name

    feed = feedparser.parse((public / "feed.atom").read_bytes())
    assert feed.bozo == 0
    entries = {e.id: e for e in feed.entries}
    prev = [link for link in feed.feed.links if link.rel == "prev-archive"]
    while prev:  # backfill the history through the RFC 5005 archives
        rel = prev[0].href.removeprefix("https://blog.example.org/")
        archive = feedparser.parse((public / rel).read_bytes())
        assert archive.bozo == 0
        # the current document overlaps the newest archive; a reader dedupes by id
        entries.update({e.id: e for e in archive.entries})
        prev = [link for link in archive.feed.links if link.rel == "prev-archive"]
    for e in entries.values():
        assert e.id and e.title and e.link and e.updated and e.summary
    titles = [e.title for e in entries.values()]
    assert len(titles) == len(set(titles)), "an article appears twice in the feed"
    # 15 published posts + 6 friend entries - 1 syndicated copy; the draft never shows
    assert len(entries) == 20

    page_titles = all_titles(public)
    assert sorted(page_titles) == sorted(titles)
    mirrored = [t for t in page_titles if MIRRORED_TITLE_WORD in t.lower()]
    assert len(mirrored) == 1

    index = parse_page(public / "index.html")
    assert "INCOMING TRANSMISSION" in index.text and "LATEST UPDATES" in index.text

    email_html = (public / "email.html").read_text(encoding="utf-8")
    assert "<script" not in email_html.lower()
    assert 'style="' in email_html  # premailer inlined the CSS
    email_txt = (public / "email.txt").read_text(encoding="utf-8").splitlines()
    assert email_txt[:2] == ["INCOMING TRANSMISSION", "LATEST UPDATES"]
    numbered = [line for line in email_txt if re.match(r"\d+\. ", line)]
    assert sum(1 for line in numbered if MIRRORED_TITLE_WORD in line.lower()) == 1


def test_second_run_changes_nothing(example: Path, fixed_now: datetime) -> None:
    run(example, "run")
    status1 = run(example, "status").output
    public = example.parent / "public"
    before = {p: p.read_bytes() for p in public.rglob("*") if p.is_file()}
    result = run(example, "run")
    assert result.exit_code == 0
    assert "0 new" in result.output
    assert run(example, "status").output.count("entries") == status1.count("entries")
    assert "21 entries stored" in run(example, "status").output
    after = {p: p.read_bytes() for p in public.rglob("*") if p.is_file()}
    assert after == before


def test_broken_post_is_reported_and_the_rest_still_appear(
    example: Path, fixed_now: datetime
) -> None:
    bad = example.parent / "content" / "broken.md"
    bad.write_text("---\ntitle: Broken\ntags: [oops\n---\nbody\n", encoding="utf-8")
    result = run(example, "run")
    assert result.exit_code == 1
    assert f"{bad}:" in result.output
    assert len(all_titles(example.parent / "public")) == 20
    status = run(example, "status")
    assert status.exit_code == 1
    assert "broken.md" in status.output


def test_misspelt_config_key_is_refused_before_anything_is_touched(example: Path) -> None:
    text = example.read_text(encoding="utf-8").replace("page_size =", "page_sise =")
    example.write_text(text, encoding="utf-8")
    result = run(example, "run")
    assert result.exit_code == 2
    assert "digest.page_sise" in result.output
    assert not (example.parent / "data").exists()
    assert not (example.parent / "public").exists()


def test_unreachable_feed_fails_but_content_still_builds(
    example: Path, fixed_now: datetime
) -> None:
    with example.open("a", encoding="utf-8") as f:
        f.write('\n[[feeds]]\nurl = "http://127.0.0.1:9/feed.atom"\nname = "Down"\n')
    result = run(example, "run")
    assert result.exit_code == 1
    assert "http://127.0.0.1:9/feed.atom" in result.output
    assert (example.parent / "public" / "index.html").is_file()
    assert len(all_titles(example.parent / "public")) == 20


def test_config_from_environment_variable(example: Path, fixed_now: datetime) -> None:
    result = CliRunner().invoke(
        cli, ["status"], env={"AGGREGATOR_CONFIG": str(example)}, catch_exceptions=False
    )
    assert "Friend's Notebook" in result.output
