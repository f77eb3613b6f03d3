"""The daemon starting on an existing database whose outputs are missing (a new
docker volume, a cleaned directory): it builds at once instead of after
rebuild_interval, /healthz says 503 and why while outputs are missing, and
at the default log level it still says where it runs."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import __version__
from aggregator.daemon import without_password
from tests.daemon_helpers import (
    DaemonProcess,
    atom_feed,
    free_port,
    open_runs,
    wait_for,
    write_config,
)


class Feed:
    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: Request) -> Response:
        self.requests += 1
        return Response(atom_feed(["Kept in the database"]), content_type="application/atom+xml")


@pytest.fixture
def feed(httpserver: HTTPServer) -> Iterator[tuple[Feed, str]]:
    state = Feed()
    httpserver.expect_request("/feed.atom").respond_with_handler(state)
    yield state, httpserver.url_for("/feed.atom")


def titles_in(public: Path) -> list[str]:
    return [e.title for e in feedparser.parse((public / "feed.atom").read_bytes()).entries]


def builds(db: Path) -> int:
    return sum(1 for job, _, ok in open_runs(db) if job == "build" and ok)


def health(d: DaemonProcess) -> tuple[int, dict[str, object]]:
    """(status, report) of /healthz; (0, {}) while nothing listens yet."""
    try:
        status, _, body = d.get("/healthz")
    except OSError:
        return 0, {}
    return status, json.loads(body)


def healthy(d: DaemonProcess) -> dict[str, object] | None:
    """The /healthz report when it says 200, else None."""
    status, report = health(d)
    return report if status == 200 else None


def first_life(tmp_path: Path, url: str, port: int) -> Path:
    """A daemon's first life: ingest and build, then a clean stop. Every job
    is hours from due afterwards (stored with the schedule)."""
    config = write_config(tmp_path, [url], port, ingest_interval=3600, rebuild_interval=3600)
    feed = tmp_path / "public" / "feed.atom"
    d = DaemonProcess(config, port)
    try:
        wait_for("the first build", lambda: feed.exists() and titles_in(feed.parent))
    finally:
        assert d.stop() == 0
    assert titles_in(feed.parent) == ["Kept in the database"]
    return config


def test_an_empty_output_directory_is_built_at_start_and_said_so_at_the_default_level(
    tmp_path: Path, feed: tuple[Feed, str]
) -> None:
    state, url = feed
    port = free_port()
    config = first_life(tmp_path, url, port)
    db, public = tmp_path / "data" / "aggregator.db", tmp_path / "public"
    # A new volume: the output directory is there, and empty.
    shutil.rmtree(public)
    public.mkdir()
    fetched, built = state.requests, builds(db)

    started = time.monotonic()
    d = DaemonProcess(config, port, log_format="human", verbose=False)
    try:
        wait_for("the outputs", lambda: (public / "feed.atom").exists(), timeout=20)
        took = time.monotonic() - started
        report = wait_for("a healthy answer", lambda: healthy(d))
        assert report["ok"] is True and "reason" not in report
        # Built from the database, before any ingest: the feed was not asked.
        assert titles_in(public) == ["Kept in the database"]
        assert (public / "index.html").exists()
        assert state.requests == fetched and builds(db) == built + 1
        assert d.get("/")[0] == 200
    finally:
        assert d.stop() == 0
    assert took < 20  # not rebuild_interval (an hour)
    # Without -v: the one line that says where and how it runs, and the reason
    # it built (a warning); nothing else at INFO.
    lines = d.log().splitlines()
    info = [line for line in lines if " INFO " in line]
    assert len(info) == 1, lines
    (line,) = info
    assert re.search(
        rf"INFO aggregator\.daemon: aggregator {re.escape(__version__)} daemon started: "
        rf"web on http://127\.0\.0\.1:{port}/, database sqlite:///\S+aggregator\.db, "
        r"ingest every 3600 s, rebuild at least every 3600 s, send 'mon 08:00' \(UTC\), "
        r"housekeeping every 86400 s; pid \d+",
        line,
    ), line
    assert any("WARNING" in w and "is empty: building at start" in w for w in lines), lines


def test_healthz_is_503_with_a_reason_while_an_output_is_missing_and_a_restart_mends_it(
    tmp_path: Path, feed: tuple[Feed, str]
) -> None:
    state, url = feed
    port = free_port()
    config = first_life(tmp_path, url, port)
    public = tmp_path / "public"
    d = DaemonProcess(config, port)
    try:
        report = wait_for("a healthy answer", lambda: healthy(d))
        assert report["ok"] is True
        (public / "index.html").unlink()  # someone cleaned up
        status, report = health(d)
        assert status == 503 and report["ok"] is False
        assert "index.html" in str(report["reason"]) and "missing" in str(report["reason"])
        assert report["last_build"]  # the rest of the report is still there
    finally:
        assert d.stop() == 0
    fetched = state.requests
    d = DaemonProcess(config, port)
    try:
        wait_for("index.html again", lambda: (public / "index.html").exists())
        wait_for("a healthy answer", lambda: healthy(d))
    finally:
        assert d.stop() == 0
    assert state.requests == fetched  # the build at start, not an ingest, mended it
    assert any("missing" in r.get("message", "") for r in d.log_records())


def test_a_database_password_never_reaches_the_log_line() -> None:
    for url, shown in [
        ("postgresql+psycopg://agg:s3cr3t/x@db.example:5432/agg", "agg:***@db.example:5432/agg"),
        ("postgresql://agg:pw@db/agg?sslmode=require", "agg:***@db/agg?sslmode=require"),
        ("postgresql://agg@db/agg", "agg@db/agg"),
        ("sqlite:///data/aggregator.db", "sqlite:///data/aggregator.db"),
    ]:
        assert without_password(url).endswith(shown), url
        assert "s3cr3t" not in without_password(url) and ":pw@" not in without_password(url)
