"""Bad input is refused with a message naming the file and key (or the URL), and
nothing is written: config.toml stays byte for byte, no database, no outputs.
Exit 2 for a config that does not load, 1 for a command that cannot be done."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from pytest_httpserver import HTTPServer

from aggregator.cli import cli

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>Mine</title></head><body>
  <outline text="Fine" type="rss" xmlUrl="https://good.example.org/feed.xml"/>
  <outline text="No scheme" type="rss" xmlUrl="blog.example.net/rss"/>
</body></opml>"""


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def untouched(example: Path, before: bytes) -> None:
    """config.toml unchanged, and no temporary copy, database or output left behind."""
    assert example.read_bytes() == before
    for name in ("config.toml.tmp", "data", "public"):
        assert not (example.parent / name).exists(), name


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("example.org/feed.xml", "did you mean https://example.org/feed.xml?"),
        ("not a url", "nor an existing file"),
        ("ftp://example.org/feed.xml", "ftp: is not a scheme feeds are fetched by"),
        ("https:///feed.xml", "it has no host"),
    ],
)
@pytest.mark.parametrize("check", [[], ["--no-check"]])
def test_feeds_add_refuses_what_is_not_a_feed_address(
    example: Path, url: str, says: str, check: list[str]
) -> None:
    before = example.read_bytes()
    result = run(example, "feeds", "add", url, *check)
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: not a feed address: {url!r}: ")
    assert says in result.output
    untouched(example, before)


def test_feeds_add_takes_an_existing_path_and_a_file_url(
    example: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = example.parent / "examples" / "feeds"
    (feeds / "second.atom").write_bytes((feeds / "friend.atom").read_bytes())
    third = feeds / "third.atom"
    third.write_bytes((feeds / "friend.atom").read_bytes())
    monkeypatch.chdir(feeds)  # a path is typed relative to where one stands
    added = run(example, "feeds", "add", "second.atom", "--no-check", "--name", "Second")
    assert added.exit_code == 0, added.output
    assert run(example, "feeds", "add", third.as_uri(), "--no-check").exit_code == 0
    text = example.read_text(encoding="utf-8")
    assert 'url = "examples/feeds/second.atom"' in text  # written relative to config.toml
    assert f'url = "{third.as_uri()}"' in text
    assert "2 entries" not in run(example, "feeds", "list").output
    assert "3 feeds" in run(example, "feeds", "list").output


def test_feeds_import_refuses_an_opml_with_an_address_that_is_not_one(
    example: Path, tmp_path: Path
) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")
    before = example.read_bytes()
    result = run(example, "feeds", "import", str(opml))
    assert result.exit_code == 1
    assert f"nothing was added to {example}: not a feed address: 'blog.example.net/rss'" in (
        result.output
    )
    assert "did you mean https://blog.example.net/rss?" in result.output
    untouched(example, before)


@pytest.mark.parametrize(
    "command",
    [
        ["feeds", "add", "https://example.org/feed.xml", "--no-check"],
        ["feeds", "remove", "examples/feeds/friend.atom"],
        ["feeds", "import", "{opml}"],
    ],
)
def test_a_read_only_config_says_to_edit_it_and_changes_nothing(
    example: Path, tmp_path: Path, command: list[str]
) -> None:
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML.replace("blog.example.net/rss", "https://b.example.net/rss"), "utf-8")
    before = example.read_bytes()
    example.chmod(0o444)  # as docker compose mounts it (`:ro`)
    result = run(example, *(a.format(opml=opml) for a in command))
    assert result.exit_code == 1, result.output
    assert result.output.startswith(
        f"error: {example}: cannot change the feed list: the file is read-only."
    )
    assert "add, remove or import feeds by editing config.toml where it is kept" in result.output
    assert "Nothing was changed." in result.output
    untouched(example, before)


def test_a_config_that_cannot_be_replaced_changes_nothing(example: Path) -> None:
    """The write itself failing (here: the temporary copy's name is taken by a
    folder; in a container, a read-only file system) is the same clear error."""
    (example.parent / "config.toml.tmp").mkdir()
    before = example.read_bytes()
    result = run(example, "feeds", "add", "https://example.org/feed.xml", "--no-check")
    assert result.exit_code == 1, result.output
    assert f"error: {example}: cannot change the feed list: Is a directory." in result.output
    assert example.read_bytes() == before
    assert (example.parent / "config.toml.tmp").is_dir()


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            'url = "examples/feeds/friend.atom"',
            'url = "example.org/feed.xml"',
            "'feeds[0].url' is not a feed address: 'example.org/feed.xml': "
            "it is not an http://, https:// or file: URL, nor an existing file",
        ),
        (
            'url = "examples/feeds/friend.atom"',
            'url = "not a url"',
            "'feeds[0].url' is not a feed address: 'not a url'",
        ),
        (
            'smtp_host = "localhost"',
            'smtp_host = ""',
            "'email.smtp_host' is empty, but [[subscribers]] lists 1 address",
        ),
        (
            'schedule = "mon 08:00"',
            'schedule = "someday"',
            "'email.schedule' is not a schedule: 'someday'",
        ),
        (
            "smtp_port = 1025",
            "smtp_port = 102500",
            "'email.smtp_port' must be between 1 and 65535, not 102500",
        ),
        ("port = 8000", "port = 0", "'daemon.port' must be between 1 and 65535, not 0"),
    ],
)
@pytest.mark.parametrize("command", [["run"], ["send"], ["status"], ["feeds", "list"]])
def test_a_bad_value_is_refused_at_load_naming_file_and_key(
    example: Path, old: str, new: str, says: str, command: list[str]
) -> None:
    text = example.read_text(encoding="utf-8")
    assert text.count(old) == 1
    example.write_text(text.replace(old, new), encoding="utf-8")
    before = example.read_bytes()
    result = run(example, *command)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {example}: {says}")
    untouched(example, before)


ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d([+-]\d\d:\d\d)")


def test_status_shows_every_time_in_the_site_zone_with_its_offset(
    example: Path, fixed_now: datetime
) -> None:
    assert run(example, "run").exit_code == 0  # at 12:00 UTC = 20:00 in Asia/Shanghai
    text = run(example, "status").output
    offsets = ISO.findall(text)
    assert len(offsets) >= 5 and set(offsets) == {"+08:00"}, text
    assert "Last ingest: 2026-11-22 20:00:00+08:00" in text
    assert "next: 2026-11-23 08:00:00+08:00" in text  # [email] schedule "mon 08:00", local

    report = json.loads(run(example, "status", "--json").output)
    assert report["now"] == "2026-11-22T20:00:00+08:00"
    assert report["issues"]["next"] == "2026-11-23T08:00:00+08:00"
    assert report["jobs"]["ingest"]["last_ok"]["finished"] == "2026-11-22T20:00:00+08:00"
    times = ISO.findall(json.dumps(report))
    assert len(times) >= 5 and set(times) == {"+08:00"}

    listed = run(example, "feeds", "list").output
    assert "2026-11-22 20:00+08:00" in listed  # last fetch of the friend feed


def test_an_empty_smtp_host_with_subscribers_only_in_the_database_fails_clearly(
    example: Path, fixed_now: datetime
) -> None:
    """config.toml lists no one, so it loads; `subscribers add` put one in the
    database: the send says what is missing instead of smtplib's
    "please run connect() first"."""
    text = example.read_text(encoding="utf-8").replace('smtp_host = "localhost"', 'smtp_host = ""')
    text = text.replace('[[subscribers]]\nemail = "reader@example.com"\nname = "A. Reader"\n', "")
    example.write_text(text, encoding="utf-8")
    assert run(example, "run").exit_code == 0
    assert run(example, "subscribers", "add", "later@example.com").exit_code == 0
    result = run(example, "send")
    assert result.exit_code == 1
    assert "error: email.smtp_host is empty: name the SMTP server" in result.output
    assert "connect()" not in result.output


def test_feeds_add_through_a_symlinked_config_keeps_the_link_and_its_mode(example: Path) -> None:
    kept = example.parent / "aggregator.toml"  # (relative paths are read from the target's folder)
    kept.write_bytes(example.read_bytes())
    kept.chmod(0o600)
    example.unlink()
    example.symlink_to(kept)
    result = run(example, "feeds", "add", "https://example.org/feed.xml", "--no-check")
    assert result.exit_code == 0, result.output
    assert example.is_symlink()
    assert 'url = "https://example.org/feed.xml"' in kept.read_text(encoding="utf-8")
    assert kept.stat().st_mode & 0o777 == 0o600


def test_a_read_only_config_refuses_feeds_add_before_fetching_anything(
    example: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/blog/").respond_with_data("<html></html>", content_type="text/html")
    before = example.read_bytes()
    example.chmod(0o444)
    result = run(example, "feeds", "add", httpserver.url_for("/blog/"))
    assert result.exit_code == 1, result.output
    assert "cannot change the feed list: the file is read-only." in result.output
    assert httpserver.log == []  # refused before discovery fetched the page
    untouched(example, before)
