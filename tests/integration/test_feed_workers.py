"""The parser worker processes: kept across ingests, replaced when one dies;
feed results stored in batches, each feed still counted on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from aggregator import pipeline, workers
from aggregator.pipeline import ingestion
from tests.integration.feedkit import atom, feed_result, ingest, make_config, opened, titles
from tests.integration.workerkit import worker_pids

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
FEEDS = 6


def serve(server: HTTPServer, version: str) -> list[str]:
    """FEEDS feeds of 3 entries; `version` changes every body (and title)."""
    server.clear()
    urls = []
    for i in range(FEEDS):
        body = atom(3, prefix=f"f{i}-", title=f"Feed {i} {version}")
        server.expect_request(f"/f{i}").respond_with_data(body)
        urls.append(server.url_for(f"/f{i}"))
    return urls


def test_the_workers_are_kept_from_one_ingest_to_the_next(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, serve(httpserver, "one"), parse_workers=2)
    assert ingest(config, NOW).failures == ()
    pool, pids = workers.parser_pool(2), worker_pids(2)
    assert len(pids) == 2 and os.getpid() not in pids
    urls = serve(httpserver, "two")  # every body changed: every feed parsed again
    report = ingest(config, NOW, all_feeds=True)
    assert report.failures == ()
    assert all(feed_result(report, u).items == 3 for u in urls)
    # The daemon ingests every few minutes: no new processes each time.
    assert workers.parser_pool(2) is pool
    assert worker_pids(2) == pids


def test_a_killed_worker_costs_at_most_its_feeds_and_a_fresh_pool_takes_over(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    config = make_config(tmp_path, serve(httpserver, "one"), parse_workers=2)
    old = worker_pids(2)
    assert len(old) == 2
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    first = ingest(config, NOW)
    for r in first.failures:
        assert "parser process died" in r.reason
    # Whatever failed is fetched again next time, by new workers.
    again = ingest(config, NOW, all_feeds=True)
    assert again.failures == ()
    assert len(titles(config, NOW)) == FEEDS * 3
    assert worker_pids(2).isdisjoint(old)


def test_feeds_stored_in_batches_are_each_counted(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A transaction every 4 entries: feeds of 3 are stored two at a time.
    monkeypatch.setattr(ingestion, "STORE_BATCH", 4)
    urls = serve(httpserver, "one")
    config = make_config(tmp_path, urls, parse_workers=2)
    seen: list[int] = []
    with opened(config) as store:
        report = pipeline.ingest(
            config, store, NOW, progress=lambda done, total, r: seen.append(done)
        )
    assert [feed_result(report, u).new for u in urls] == [3] * FEEDS
    assert len(titles(config, NOW)) == FEEDS * 3
    # Progress still reaches every feed, in order.
    assert seen == list(range(FEEDS + 1))


#: run from the project's root, so that it and its workers can import tests.integration.workerkit
KEEP_A_POOL = """
import sys, threading, time
from tests.integration.workerkit import worker_pids
if sys.argv[1] == "threaded":  # a daemon has threads: forkserver, not fork
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
print(" ".join(str(p) for p in worker_pids(2)), flush=True)
time.sleep(60)
"""
ROOT = Path(__file__).resolve().parents[2]


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
@pytest.mark.parametrize("kind", ["single-threaded", "threaded"])
def test_workers_end_with_a_killed_parent(kind: str) -> None:
    # The pool outlives each ingest; a daemon killed with SIGKILL between two
    # ingests must not leave its parser processes behind.
    parent = subprocess.Popen(
        [sys.executable, "-c", KEEP_A_POOL, kind], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert parent.stdout is not None
        pids = {int(p) for p in parent.stdout.readline().split()}
        assert len(pids) == 2 and parent.pid not in pids
        assert all(running(p) for p in pids)
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 15
    while any(running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(p) for p in pids)
