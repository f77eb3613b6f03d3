"""Hostile and careless content directories: the run goes on, names the file
(and line), stores and builds every other post, and never empties the
digest without saying so.

Each case is a real folder in tmp_path, a real SQLite file (or PostgreSQL,
see tests/databases.py) and the real CLI: `run` ingests and builds.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner, Result

from aggregator import app, settings
from aggregator.cli import cli
from aggregator.config import load
from aggregator.model import Entry, RawItem
from aggregator.normalize import normalize
from aggregator.sources import content_scan, front_matter
from aggregator.store import Store
from tests.databases import Databases

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GOOD = "---\ntitle: Good post\ndate: 2026-11-01\n---\nStill here.\n"


@dataclass(frozen=True)
class Site:
    root: Path
    config: Path

    @property
    def content(self) -> Path:
        return self.root / "content"

    def post(self, rel: str, text: str) -> Path:
        path = self.content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(
            cli, ["--config", str(self.config), *args], catch_exceptions=False
        )

    def failed(self, result: Result) -> list[str]:
        """The FAILED lines a person reads, without the prefix."""
        return [
            line.removeprefix("FAILED ")
            for line in result.output.splitlines()
            if line.startswith("FAILED ")
        ]

    def built(self) -> list[str]:
        """The titles in the built Atom feed."""
        feed = feedparser.parse((self.root / "public" / "feed.atom").read_bytes())
        assert feed.bozo == 0
        return sorted(e.title for e in feed.entries)

    def visible(self, now: datetime) -> list[str]:
        store = Store.open(load(self.config).database.url)
        try:
            return sorted(s.entry.title for s in store.visible_entries(now))
        finally:
            store.close()


@pytest.fixture
def site(tmp_path: Path, databases: Databases, fixed_now: datetime) -> Site:
    config = tmp_path / "config.toml"
    config.write_text(
        '[site]\nbase_url = "https://blog.example.org/"\ntimezone = "Asia/Shanghai"\n'
        f'[content]\ndir = "content"\n[database]\nurl = "{databases.new()}"\n'
        '[output]\ndir = "public"\n',
        encoding="utf-8",
    )
    s = Site(tmp_path, config)
    s.post("good.md", GOOD)
    return s


# -- one bad post: named with its line, the rest stored and built ---------------

#: front matter (after `---\ntitle: Bad\n`, so its first line is line 3) -> (line, reason)
BAD_YAML = {
    "13th month": ("date: 2026-13-45", 3, "'2026-13-45' is not a date (month must be in 1..12)"),
    "second 99": ("date: 2026-11-01 10:00:99", 3, "is not a date (second must be in 0..59)"),
    "offset of 99 hours": (
        "date: 2026-11-01T10:00:00+99:00",
        3,
        "a UTC offset must be less than 24 hours",
    ),
    "year 1 east of UTC": (
        "date: 0001-01-01T00:00:00+08:00",
        3,
        "'date' is out of range: 0001-01-01T00:00:00+08:00 in UTC falls outside",
    ),
    "year 9999 west of UTC": (
        "date: 9999-12-31T23:00:00-05:00",
        3,
        "'date' is out of range: 9999-12-31T23:00:00-05:00",
    ),
    # no offset: the site's zone (Asia/Shanghai) puts it before year 1
    "year 1 in the site's zone": ("date: 0001-01-01", 3, "'date' is out of range"),
    "lastmod out of range": (
        "date: 2026-11-01\nlastmod: 9999-12-31T23:00:00-05:00",
        4,
        "'lastmod' is out of range",
    ),
    "date in a string out of range": (
        'date: "0001-01-01T00:00:00+08:00"',
        3,
        "'date' is out of range",
    ),
    "explicit timestamp tag": ("date: !!timestamp soon", 3, "'soon' is not a date"),
    "5,000-digit number": ("id: " + "9" * 5000, 3, "(5,000 characters) is not a number"),
    "list as slug": ("date: 2026-11-01\nslug: [a, b]", 4, "'slug' must be a text, not a list"),
    "mapping as author": ("author: {name: x}", 3, "'author' must be a text, not a mapping"),
    "no as summary": ("summary: no", 3, "'summary' is false, not a text"),
    "nested tags": ("tags: [a, [b, c]]", 3, "each of 'tags' must be a text, not a list"),
    "number as tags": ("tags: 5", 3, "'tags' must be a list or a comma-separated text"),
    "maybe as draft": ("draft: maybe", 3, "'draft' must be true or false"),
    "nested 2,000 deep": ("tags: " + "[" * 2000 + "]" * 2000, 3, "maximum nesting depth"),
    "emphasis not quoted": (
        "date: 2026-11-01\nsummary: *so* good",
        4,
        "(a text that starts with * must be in quotes)",
    ),
    "alias": ("date: 2026-11-01\nsummary: *so", 4, "YAML alias *so in front matter"),
}


@pytest.mark.parametrize("case", sorted(BAD_YAML))
def test_a_bad_yaml_value_names_file_and_line_and_the_rest_is_built(site: Site, case: str) -> None:
    text, line, reason = BAD_YAML[case]
    bad = site.post("bad.md", f"---\ntitle: Bad\n{text}\n---\nBad body.\n")
    result = site.run("run")
    assert result.exit_code == 1, result.output
    (failure,) = site.failed(result)
    assert failure.startswith(f"{bad}:{line}: "), failure
    assert reason in failure
    assert site.built() == ["Good post"]


BAD_TOML = {
    "year 1 east of UTC": ("date = 0001-01-01T00:00:00+08:00", 3, "'date' is out of range"),
    "year 9999 west of UTC": ("date = 9999-12-31T23:00:00-05:00", 3, "'date' is out of range"),
    "30 February": ("date = 2026-02-30", 3, "Invalid date or datetime"),
    "5,000-digit number": ("id = " + "9" * 5000, 3, "value has 5000 digits"),
    "nested 5,000 deep": ("tags = " + "[" * 5000 + "]" * 5000, 3, "nested too deeply"),
    "list as title": ('title = ["a"]', 3, "'title' must be a text, not a list"),
}


@pytest.mark.parametrize("case", sorted(BAD_TOML))
def test_a_bad_toml_value_names_file_and_line_and_the_rest_is_built(site: Site, case: str) -> None:
    text, line, reason = BAD_TOML[case]
    bad = site.post("bad.md", f"+++\n# bad\n{text}\n+++\nBad body.\n")
    result = site.run("run")
    (failure,) = site.failed(result)
    assert failure.startswith(f"{bad}:{line}: "), failure
    assert reason in failure
    assert site.built() == ["Good post"]


def test_the_yaml_alias_bomb_is_refused_fast_with_bounded_memory(site: Site) -> None:
    # 9 anchors, each a list of 9 aliases of the one before: 9**9 strings if expanded.
    lines = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    text = "---\ntitle: Bomb\n" + "\n".join(lines) + "\ntags: *i\n---\nx\n"
    assert len(text.encode()) < 420
    bad = site.post("bomb.md", text)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    result = site.run("run")
    elapsed = time.monotonic() - started
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    (failure,) = site.failed(result)
    # the first alias is on line 4: `b: &b [*a, ...]`
    assert failure.startswith(f"{bad}:4: YAML alias *a in front matter"), failure
    assert site.built() == ["Good post"]
    assert elapsed < 20, elapsed  # expanded, it took minutes
    assert grown_mib < 200, grown_mib  # expanded, 2.9 GiB


def test_front_matter_over_the_cap_is_refused_before_it_is_parsed(site: Site) -> None:
    summary = "word " * (front_matter.MAX_FRONT_MATTER // 5)
    bad = site.post("big.md", f"---\ntitle: Big\nsummary: {summary}\n---\nx\n")
    result = site.run("run")
    (failure,) = site.failed(result)
    assert failure.startswith(f"{bad}:1: front matter is ")
    assert f"over the limit of {front_matter.MAX_FRONT_MATTER:,}" in failure
    assert site.built() == ["Good post"]


def test_a_post_with_thousands_of_tags_keeps_the_first_hundred_and_warns(site: Site) -> None:
    tags = ", ".join(f"t{i}" for i in range(5000))
    path = site.post("tagged.md", f"---\ntitle: Tagged\ndate: 2026-11-02\ntags: [{tags}]\n---\nx\n")
    result = site.run("run")
    assert result.exit_code == 0, result.output
    assert f"WARNING {path}: 5000 tags: only the first 100 are kept" in result.output
    assert site.built() == ["Good post", "Tagged"]
    tag_pages = {p.name for p in (site.root / "public" / "tags").iterdir() if p.is_dir()}
    assert {"t0", "t99"} <= tag_pages and "t100" not in tag_pages


def test_extreme_dates_utc_can_hold_are_stored_and_built(site: Site) -> None:
    site.post("old.md", "---\ntitle: Oldest\ndate: 0001-01-01T00:00:00Z\n---\nThe first morning.\n")
    site.post(
        "edited.md",
        "---\ntitle: Edited last\ndate: 2026-11-02\nlastmod: 9999-12-31T23:59:59Z\n---\nx\n",
    )
    result = site.run("run")
    assert result.exit_code == 0, result.output
    assert site.built() == ["Edited last", "Good post", "Oldest"]


# -- symlinks ---------------------------------------------------------------------


def test_symlink_loops_are_reported_and_posts_and_files_beside_them_are_built(
    site: Site,
) -> None:
    """On Python 3.11 and 3.12 Path.resolve raised RuntimeError on these (ingest
    and build both ended in a traceback); on 3.13 they were skipped silently."""
    (site.content / "self.md").symlink_to("self.md")
    (site.content / "img").mkdir()
    (site.content / "img" / "a.png").symlink_to("b.png")
    (site.content / "img" / "b.png").symlink_to("a.png")
    (site.content / "img" / "real.png").write_bytes(b"\x89PNG real")
    (site.content / "gone.md").symlink_to("nowhere.md")
    site.post(
        "pictures.md",
        "---\ntitle: Pictures\ndate: 2026-11-02\n---\n![loop](img/a.png) ![real](img/real.png)"
        " [nul](img/a%00b.png)\n",
    )
    result = site.run("run")
    assert result.exit_code == 1
    failed = sorted(site.failed(result))
    assert failed == [
        f"{site.content / 'gone.md'}: broken symlink: nowhere.md does not exist",
        f"{site.content / 'img' / 'a.png'}: symlink loop (it leads back to itself); not followed",
        f"{site.content / 'img' / 'b.png'}: symlink loop (it leads back to itself); not followed",
        f"{site.content / 'self.md'}: symlink loop (it leads back to itself); not followed",
    ]
    assert site.built() == ["Good post", "Pictures"]
    public = site.root / "public"
    assert (public / "img" / "real.png").read_bytes() == b"\x89PNG real"
    assert not (public / "img" / "a.png").exists()
    # images resolve against the post's folder; a link to what is no file
    # (a NUL in its path: Path.resolve raised ValueError) against the post
    feed = feedparser.parse((public / "feed.atom").read_bytes())
    (html,) = [e.content[0].value for e in feed.entries if e.title == "Pictures"]
    assert 'src="https://blog.example.org/img/real.png"' in html
    assert 'href="https://blog.example.org/posts/pictures/img/a%00b.png"' in html
    assert site.run("build").exit_code == 0  # build alone walks the folder too


# -- an empty scan never wipes the digest silently -------------------------------


def test_a_missing_content_directory_keeps_the_published_posts(
    site: Site, fixed_now: datetime
) -> None:
    site.post("second.md", GOOD.replace("Good post", "Second"))
    assert site.run("run").exit_code == 0
    site.content.rename(site.root / "elsewhere")
    result = site.run("run")
    assert result.exit_code == 1
    assert site.failed(result) == [
        f"{site.content}: content directory not found;"
        " the posts already stored from it stay published"
    ]
    assert site.visible(fixed_now) == ["Good post", "Second"]
    assert site.built() == ["Good post", "Second"]
    # a symlink loop where the folder was says the same
    site.content.symlink_to(site.content)
    result = site.run("run")
    assert "the content directory is a symlink loop" in site.failed(result)[0]
    assert site.built() == ["Good post", "Second"]
    site.content.unlink()
    (site.root / "elsewhere").rename(site.content)
    result = site.run("run")
    assert (result.exit_code, site.built()) == (0, ["Good post", "Second"])


def test_an_emptied_content_directory_warns_with_the_count_and_recovers(
    site: Site, fixed_now: datetime
) -> None:
    site.post("second.md", GOOD.replace("Good post", "Second"))
    site.post("notes/draft.md", "---\ntitle: Draft\ndate: 2026-11-01\ndraft: true\n---\nx\n")
    assert site.run("run").exit_code == 0
    kept = site.root / "kept"
    site.content.rename(kept)
    site.content.mkdir()  # what a docker volume whose host folder is missing looks like
    result = site.run("run")
    warning = f"WARNING {site.content}: no posts in the content directory now: the 2 posts"
    assert warning in result.output, result.output
    assert "check [content] dir in config.toml" in result.output
    assert site.visible(fixed_now) == []
    # nothing was deleted: the files come back, and so do the posts
    site.content.rmdir()
    kept.rename(site.content)
    result = site.run("run")
    assert "WARNING" not in result.output
    assert site.built() == ["Good post", "Second"]


def test_a_deleted_post_is_not_warned_about_and_the_daemon_rebuilds_for_it(
    site: Site, fixed_now: datetime
) -> None:
    second = site.post("second.md", GOOD.replace("Good post", "Second"))
    site.run("run")
    second.unlink()
    result = site.run("ingest")
    assert result.exit_code == 0 and "WARNING" not in result.output
    assert "0 new, 1 changed" in result.output
    # what the daemon does after each ingest: a post that left is a reason to build
    config = load(site.config)
    store = Store.open(config.database.url)
    try:
        assert app.build_if_due(config, store) is not None
    finally:
        store.close()
    assert site.built() == ["Good post"]


def _without_read_override() -> list[str]:
    """A command prefix under which chmod 000 denies us a folder (root reads any)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.parametrize("which", ["a subfolder", "the content directory"])
def test_an_unreadable_folder_keeps_its_posts_while_other_deletions_apply(
    site: Site, fixed_now: datetime, which: str
) -> None:
    site.post("notes/inside.md", GOOD.replace("Good post", "Inside"))
    doomed = site.post("doomed.md", GOOD.replace("Good post", "Doomed"))
    assert site.run("run").exit_code == 0
    locked = site.content / "notes" if which == "a subfolder" else site.content
    if which == "a subfolder":
        doomed.unlink()
    locked.chmod(0)
    try:
        # a real process: the permission check is the kernel's
        command = ["-m", "aggregator", "--config", str(site.config), "ingest"]
        proc = subprocess.run(
            [*_without_read_override(), sys.executable, *command],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 1, proc.stderr
    assert (
        f"FAILED {locked}: cannot list folder: Permission denied;"
        " the posts already stored from it stay published"
    ) in proc.stderr
    expected = ["Good post", "Inside"] + (["Doomed"] if locked == site.content else [])
    assert site.visible(fixed_now) == sorted(expected)


# -- a worker process that dies ---------------------------------------------------


def _die_on_killer(item: RawItem) -> Entry:
    """normalize, except that the post titled Killer ends its worker process
    at once, as the kernel's out-of-memory killer would."""
    if item.title == "Killer":
        os._exit(137)
    return normalize(
        item, base_url="https://blog.example.org/", now=NOW, allow_future=True,
        code_placeholder="[code]", tracking_params=(),
    )  # fmt: skip


def test_a_post_that_kills_its_worker_fails_alone_and_the_rest_are_read(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(content_scan, "PARALLEL_THRESHOLD", 4)
    for i in range(60):
        title = "Killer" if i == 25 else f"P{i}"
        site.post(f"p{i:02d}.md", f"---\ntitle: {title}\ndate: 2026-11-01\n---\nx\n")
    scan = content_scan.Scanner(settings.content_settings(load(site.config)), {}, _die_on_killer, 2)
    read = [e.title for batch in scan.batches() for e in batch]
    (failure,) = scan.outcome.failures
    assert failure.location == str(site.content / "p25.md")
    assert "the process reading this post died" in failure.reason
    # every other post, in path order (which post keeps a clashing id depends on it)
    assert read == ["Good post", *(f"P{i}" for i in range(60) if i != 25)]
