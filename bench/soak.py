"""Soak: the daemon ingesting 50 local feeds on their own schedules, memory sampled as it goes.

An accelerated stand-in for weeks of service. `[daemon] ingest_interval` is
a tenth of a second instead of a minute, and each scheduled ingest fetches
only the feeds that are due. Feed i asks (Cache-Control max-age) to be polled
every 122 + 2 * (i % 10) seconds; since a feed due within the fetcher's
2-minute grace (sources/schedule.py, there for cron) is fetched at once, that
is an effective 2 to 20 s here: a mix of fast and slow feeds, a few fetched
per ingest. Every 50th request, the feed asked for gains a post, so builds
run too. The daemon's resident memory (VmRSS) is read from /proc every 25
ingests; the last fifth of the samples is compared with the fifth after
warm-up to say whether it grew.

    python -m bench.soak [--ingests 1000] [--feeds 50] [--max-seconds 200]

It stops at --ingests or --max-seconds, whichever comes first: the 1,000
ingests take about three minutes on a busy 2-core machine; give a larger
--max-seconds (or more --ingests) for a longer soak.

Prints a table and replaces the `soak` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.daemon_helpers import atom_feed, free_port, open_runs, wait_for, write_config

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "RESULTS.md"


class Feeds:
    """`count` feeds with per-feed polling hints; every 50th request adds a post."""

    def __init__(self, count: int) -> None:
        self.posts = [[f"Feed {i} post {j}" for j in range(10)] for i in range(count)]
        self.requests = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        n = int(request.path.rsplit("-", 1)[1].split(".")[0])
        with self.lock:
            self.requests += 1
            if self.requests % 50 == 0:
                self.posts[n].append(f"Feed {n} post {len(self.posts[n])}")
            titles = self.posts[n][-20:]  # feeds keep their latest 20 items
        return Response(
            atom_feed(titles, base=f"https://feed{n}.example/"),
            content_type="application/atom+xml",
            headers={"Cache-Control": f"max-age={122 + 2 * (n % 10)}"},
        )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def ingests_done(db: Path) -> int:
    return sum(1 for job, fin, ok in open_runs(db) if job == "ingest" and fin is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ingests", type=int, default=1000)
    ap.add_argument("--feeds", type=int, default=50)
    ap.add_argument("--max-seconds", type=float, default=200.0)
    ap.add_argument("--no-record", action="store_true", help="do not write bench/RESULTS.md")
    args = ap.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per fetch otherwise
    feeds = Feeds(args.feeds)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request(re.compile(r"^/feed-\d+\.atom$")).respond_with_handler(feeds)
    server.start()
    tmp = Path(tempfile.mkdtemp(prefix="aggregator-soak-"))
    port = free_port()
    urls = [server.url_for(f"/feed-{i}.atom") for i in range(args.feeds)]
    config = write_config(
        tmp, urls, port, min_interval_minutes=2.0,
        ingest_interval=0.1, housekeeping_interval=30, rebuild_interval=3600,
    )  # fmt: skip
    db = tmp / "data" / "aggregator.db"
    log = (tmp / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "daemon"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
    )  # fmt: skip
    samples: list[tuple[float, int, int]] = []  # (seconds, ingests, rss KiB)
    started = time.monotonic()
    try:
        wait_for("the first ingest", lambda: ingests_done(db) > 0, timeout=60)
        next_sample = 0
        while True:
            done = ingests_done(db)
            elapsed = time.monotonic() - started
            if done >= next_sample or done >= args.ingests or elapsed > args.max_seconds:
                samples.append((elapsed, done, rss_kib(proc.pid)))
                next_sample = done + max(1, args.ingests // 40)
            if done >= args.ingests or elapsed > args.max_seconds:
                break
            if proc.poll() is not None:
                raise SystemExit(f"daemon died: see {tmp / 'daemon.log'}")
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
        log.close()
        server.stop()
    builds = sum(1 for job, fin, ok in open_runs(db) if job == "build" and ok)
    report(args, samples, builds, code, feeds.requests)


def report(
    args: argparse.Namespace,
    samples: list[tuple[float, int, int]],
    builds: int,
    code: int,
    fetches: int,
) -> None:
    fifth = max(1, len(samples) // 5)
    early = statistics.mean(s[2] for s in samples[fifth : 2 * fifth])
    late = statistics.mean(s[2] for s in samples[-fifth:])
    elapsed, done, rss = samples[-1]
    growth = (late - early) / early * 100
    load = os.getloadavg()
    lines = [
        f"- {done} scheduled ingests of {args.feeds} local feeds "
        f"({fetches} fetches of due feeds, {fetches / max(1, done):.1f} per ingest; "
        f"{builds} builds) in {elapsed:.0f} s; "
        f"daemon exit code on SIGTERM: {code}",
        f"- daemon RSS: {samples[0][2] / 1024:.1f} MiB after the first ingest, "
        f"{early / 1024:.1f} MiB after warm-up, {late / 1024:.1f} MiB at the end "
        f"(last fifth vs second fifth: {growth:+.1f}%)",
        f"- load average while measured: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(2 cores, shared with other work)",
        "",
        "| seconds | ingests | RSS MiB |",
        "|---:|---:|---:|",
        *(
            f"| {t:.0f} | {n} | {r / 1024:.1f} |"
            for t, n, r in samples[:: max(1, len(samples) // 10)]
        ),
        f"| {elapsed:.0f} | {done} | {rss / 1024:.1f} |",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_record:
        record("soak", "Daemon soak (`python -m bench.soak`)", text)


def record(name: str, title: str, body: str) -> None:
    """Replace this benchmark's own section of bench/RESULTS.md."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    section = f"{start}\n## {title}\n\n{body}\n{end}"
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    if start in old and end in old:
        new = old[: old.index(start)] + section + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
