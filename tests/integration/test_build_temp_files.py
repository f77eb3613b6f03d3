"""Temp files a killed build left behind are removed by the next build, and
nothing else is: not a temp file being written now, not a file of the user's,
not a symlink. And what counts as missing outputs (the daemon builds at start
and /healthz answers 503 while they are)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from click.testing import CliRunner

from aggregator.cli import cli
from aggregator.deliver.files import BUILD_TEMP_AGE, MANIFEST, missing_outputs
from tests.daemon_helpers import free_port, write_config

POST = """---
title: A post with a tag
date: 2026-11-01 08:00
tags: [notes]
---

Some words, enough to make an excerpt of.
"""


def site(tmp_path: Path) -> Path:
    config = write_config(tmp_path, [], free_port())
    (tmp_path / "content" / "a-post.md").write_text(POST, encoding="utf-8")
    return config


def build(config: Path) -> str:
    """`aggregator run`: the content directory in, then the build."""
    result = CliRunner().invoke(cli, ["--config", str(config), "run"])
    assert result.exit_code == 0, result.output
    return result.output


def left_by_a_write(directory: Path, target: str, age: float) -> Path:
    """A temp file named as deliver.files.write_atomic names it (mkstemp's
    own name), last written `age` seconds ago."""
    fd, name = tempfile.mkstemp(prefix=f".{target}.", suffix=".tmp", dir=directory)
    os.write(fd, b"<html><body>half a pa")
    os.close(fd)
    when = time.time() - age
    os.utime(name, (when, when))
    return Path(name)


def test_a_build_removes_what_killed_builds_left_and_nothing_else(tmp_path: Path) -> None:
    config = site(tmp_path)
    build(config)
    public = tmp_path / "public"
    tag_dir = next(p.parent for p in public.rglob("index.html") if "notes" in p.parts)
    stale_age = BUILD_TEMP_AGE.total_seconds() + 60
    killed = [
        left_by_a_write(public, "index.html", stale_age),
        left_by_a_write(public, MANIFEST, 3 * 3600),
        left_by_a_write(tag_dir, "index.html", 24 * 3600),  # in a subdirectory too
    ]
    # Another build writing right now, and one that started a while ago but
    # is still within the bound: theirs, not ours to take.
    in_progress = [
        left_by_a_write(public, "feed.atom", 0),
        left_by_a_write(public, "rss.xml", BUILD_TEMP_AGE.total_seconds() - 60),
    ]
    # Old files that are not write_atomic's: the user's, and a symlink named
    # like ours (neither it nor what it points at is touched).
    mine = [public / ".draft.tmp", public / "notes.tmp", public / ".index.html.short.tmp"]
    outside = tmp_path / "keep-me.txt"
    outside.write_text("not the build's", encoding="utf-8")
    link = public / ".index.html.abcd1234.tmp"
    link.symlink_to(outside)
    for path in mine:
        path.write_text("the user's", encoding="utf-8")
    old = time.time() - 24 * 3600
    for path in [*mine, outside]:
        os.utime(path, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)

    build(config)

    assert [p for p in killed if p.exists()] == []
    assert all(p.exists() for p in in_progress)
    assert all(p.read_text(encoding="utf-8") == "the user's" for p in mine)
    assert link.is_symlink() and outside.read_text(encoding="utf-8") == "not the build's"
    assert (public / "index.html").read_text(encoding="utf-8").rstrip().endswith("</html>")


def test_missing_outputs_says_what_is_missing(tmp_path: Path) -> None:
    config = site(tmp_path)
    public = tmp_path / "public"
    assert "does not exist" in str(missing_outputs(public))
    public.mkdir()
    assert "is empty" in str(missing_outputs(public))
    (public / "robots.txt").write_text("User-agent: *\n", encoding="utf-8")
    assert "no manifest" in str(missing_outputs(public))  # no build wrote here
    build(config)
    assert missing_outputs(public) is None
    (public / "feed.atom").unlink()
    (public / "rss.xml").unlink()
    reason = str(missing_outputs(public))
    assert reason.startswith("2 of the ") and "feed.atom" in reason and "rss.xml" in reason
    build(config)
    assert missing_outputs(public) is None
    (public / MANIFEST).write_text("{not json", encoding="utf-8")
    assert "unreadable" in str(missing_outputs(public))
