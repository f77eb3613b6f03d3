"""`aggregator daemon` as a real subprocess: schedule, web, SIGHUP, SIGTERM, SIGKILL."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.daemon_helpers import (
    DaemonProcess,
    atom_feed,
    complete_outputs,
    free_port,
    integrity,
    open_runs,
    wait_for,
    write_config,
)


class FeedState:
    """A feed whose entries the test changes, optionally slow to answer."""

    def __init__(self, titles: list[str]) -> None:
        self.titles = titles
        self.delay = 0.0
        self.requests = 0
        #: set at teardown so a slow answer in flight ends at once
        self.release = threading.Event()

    def __call__(self, request: Request) -> Response:
        self.requests += 1
        if self.delay:
            self.release.wait(self.delay)
        return Response(atom_feed(self.titles), content_type="application/atom+xml")


@pytest.fixture
def feed(httpserver: HTTPServer) -> Iterator[FeedState]:
    state = FeedState(["Alpha arrives", "Beta follows"])
    httpserver.expect_request("/feed.atom").respond_with_handler(state)
    yield state
    state.release.set()


def titles_in(public: Path) -> list[str]:
    parsed = feedparser.parse((public / "feed.atom").read_bytes())
    return [e.title for e in parsed.entries]


def test_daemon_ingests_builds_serves_reloads_and_stops(
    tmp_path: Path, httpserver: HTTPServer, feed: FeedState
) -> None:
    port = free_port()
    config = write_config(tmp_path, [httpserver.url_for("/feed.atom")], port)
    public = tmp_path / "public"
    d = DaemonProcess(config, port)
    try:
        # The outputs are missing at start: a build comes first, then the
        # ingest and the build of what it brought.
        health = wait_for(
            "a build after the first ingest",
            lambda: (h := d.health()) and h["last_ingest"] and titles_in(public) and h,
        )
        assert health["ok"] is True and health["last_build"] and health["failing_feeds"] == []
        assert {"Alpha arrives", "Beta follows"} <= set(titles_in(public))

        # the same files over HTTP, with the feed's content type and a working 304
        status, headers, body = d.get("/feed.atom")
        assert status == 200 and headers["content-type"] == "application/atom+xml"
        assert body == (public / "feed.atom").read_bytes()
        assert d.get("/feed.atom", {"If-None-Match": headers["etag"]})[0] == 304

        # the schedule keeps running: a new post reaches the feed on its own
        feed.titles = ["Gamma is new", *feed.titles]
        wait_for("the new post", lambda: "Gamma is new" in titles_in(public))

        # SIGHUP with a valid change: a second (failing) feed is picked up
        httpserver.expect_request("/missing.atom").respond_with_data("gone", status=404)
        broken = httpserver.url_for("/missing.atom")
        write_config(tmp_path, [httpserver.url_for("/feed.atom"), broken], port)
        d.signal(signal.SIGHUP)
        failing = wait_for(
            "the new feed to be tried", lambda: (h := d.health()) and h["failing_feeds"]
        )
        assert failing[0]["url"] == broken and "404" in failing[0]["error"]

        # SIGHUP with an invalid file: logged, old config kept, still working
        config.write_text("[digest]\npage_size = 'many'\n", encoding="utf-8")
        d.signal(signal.SIGHUP)
        wait_for("the reload error", lambda: "keeping the previous configuration" in d.log())
        requests_before = feed.requests
        wait_for("ingest to go on", lambda: feed.requests > requests_before + 1)
        assert d.health() is not None

        started = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - started < 10
    finally:
        if d.proc.poll() is None:
            d.kill()
    records = d.log_records()
    assert any(r.get("status") == "stopped" for r in records)
    assert any(r.get("source") == broken for r in records)  # failures name their source
    assert (tmp_path / "data" / "aggregator.lock").read_text() == ""  # lock released
    assert integrity(tmp_path / "data" / "aggregator.db") == "ok"


def test_sigterm_during_a_slow_ingest_exits_0_within_the_timeout(
    tmp_path: Path, httpserver: HTTPServer, feed: FeedState
) -> None:
    port = free_port()
    feed.delay = 30.0  # the fetch outlives the 1 s shutdown timeout
    config = write_config(tmp_path, [httpserver.url_for("/feed.atom")], port, shutdown_timeout=1)
    d = DaemonProcess(config, port)
    try:
        wait_for("the fetch to start", lambda: feed.requests >= 1)
        started = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - started < 8
    finally:
        if d.proc.poll() is None:
            d.kill()
    assert "abandoning it" in d.log()
    assert integrity(tmp_path / "data" / "aggregator.db") == "ok"


def in_progress(runs: list[tuple[str, str | None, int | None]], phase: str) -> bool:
    """A run of `phase` unfinished; a build only after an ingest (the build at
    start, of outputs missing, comes before anything was ingested)."""
    ingested = phase == "ingest"
    for job, finished, ok in runs:
        ingested = ingested or (job == "ingest" and bool(ok))
        if job == phase and finished is None and ingested:
            return True
    return False


@pytest.mark.parametrize("phase", ["ingest", "build"])
def test_sigkill_mid_job_leaves_a_sound_store_and_the_next_start_finishes(
    tmp_path: Path, httpserver: HTTPServer, feed: FeedState, phase: str
) -> None:
    port = free_port()
    db = tmp_path / "data" / "aggregator.db"
    public = tmp_path / "public"
    feed.titles = [f"Post number {i}" for i in range(150)]  # a build of 30 pages
    if phase == "ingest":
        feed.delay = 3.0
    config = write_config(tmp_path, [httpserver.url_for("/feed.atom")], port)
    d = DaemonProcess(config, port)
    try:
        wait_for(f"a {phase} in progress", lambda: in_progress(open_runs(db), phase), timeout=30)
    finally:
        d.kill()
    runs = open_runs(db)
    assert any(job == phase and fin is None for job, fin, _ in runs)  # killed mid-run
    assert integrity(db) == "ok"
    if public.exists():
        complete_outputs(public)

    feed.delay = 0.0
    d2 = DaemonProcess(config, port)
    try:
        wait_for(
            "a build after the restart",
            lambda: any(j == "build" and ok for j, _, ok in open_runs(db)[len(runs) :]),
            timeout=30,
        )
    finally:
        assert d2.stop() == 0
    assert integrity(db) == "ok"
    complete_outputs(public)
    assert "Post number 149" in titles_in(public)
