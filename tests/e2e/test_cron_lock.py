"""Cron mode: a second `aggregator run` while one is running exits 75 and touches nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.cli import EXIT_LOCKED, cli
from aggregator.lock import holder_pid
from tests.daemon_helpers import atom_feed, free_port, integrity, wait_for, write_config


@pytest.fixture
def slow_feed(httpserver: HTTPServer) -> Iterator[tuple[str, threading.Event]]:
    release = threading.Event()

    def handler(request: Request) -> Response:
        release.wait(20)  # bounded; the test releases it
        return Response(atom_feed(["Slow but sure"]), content_type="application/atom+xml")

    httpserver.expect_request("/slow.atom").respond_with_handler(handler)
    yield httpserver.url_for("/slow.atom"), release
    release.set()


def test_overlapping_cron_runs_never_overlap(
    tmp_path: Path, slow_feed: tuple[str, threading.Event]
) -> None:
    url, release = slow_feed
    config = write_config(tmp_path, [url], free_port())
    lock = tmp_path / "data" / "aggregator.lock"
    first = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for("the first run to hold the lock", lambda: holder_pid(lock) == first.pid)
        second = CliRunner().invoke(cli, ["--config", str(config), "run"])
        assert second.exit_code == EXIT_LOCKED
        assert f"process {first.pid}" in second.output and str(lock) in second.output
        assert not (tmp_path / "public").exists()  # the second run wrote nothing
        release.set()
        _out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert "Slow but sure" in (tmp_path / "public" / "feed.atom").read_text(encoding="utf-8")
    assert integrity(tmp_path / "data" / "aggregator.db") == "ok"


def test_a_killed_run_does_not_block_the_next(tmp_path: Path, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/f.atom").respond_with_data(
        atom_feed(["Fine"]), content_type="application/atom+xml"
    )
    config = write_config(tmp_path, [httpserver.url_for("/f.atom")], free_port())
    lock = tmp_path / "data" / "aggregator.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text("999999\n")  # left by a run that was killed
    result = CliRunner().invoke(cli, ["--config", str(config), "run"])
    assert result.exit_code == 0, result.output
    assert lock.read_text() == ""
    status = CliRunner().invoke(cli, ["--config", str(config), "status", "--json"])
    report = json.loads(status.output)
    assert report["jobs"]["ingest"]["last_ok"]["state"] == "ok"
    assert report["jobs"]["build"]["last_ok"]["detail"].endswith("files written")
    assert report["entries"] == {"total": 1, "new_this_week": 1}
    assert report["source_counts"] == {"ok": 2}


def test_a_cron_run_reads_many_feeds_in_forked_workers_and_frees_the_lock(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    # Enough feeds for the parser pool. A cron run has a single thread when the
    # pool starts, so its workers are forked; they must not keep the run lock.
    urls = []
    for i in range(6):
        body = atom_feed([f"Post {i}a", f"Post {i}b"], base=f"https://friend{i}.example/")
        httpserver.expect_request(f"/f{i}.atom").respond_with_data(
            body, content_type="application/atom+xml"
        )
        urls.append(httpserver.url_for(f"/f{i}.atom"))
    config = write_config(tmp_path, urls, free_port())
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "run"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "feeds   6: 6 fetched; 12 new" in done.stdout
    feed = (tmp_path / "public" / "feed.atom").read_text(encoding="utf-8")
    assert all(f"Post {i}b" in feed for i in range(6))
    # The next run gets the lock at once: no worker outlived the run holding it.
    again = CliRunner().invoke(cli, ["--config", str(config), "run"])
    assert again.exit_code == 0, again.output
