"""Benchmark: ingest many feeds from a slow local server.

Serves N feeds (20-50 entries each, 1-5 KB of HTML per entry, some Chinese;
text drawn from 8,000 pseudo-words and 3,000 Han characters, Zipf-distributed)
from a local HTTP server in another process that adds 100 ms of latency to
every request and answers If-None-Match with 304. Measures:

- first ingest: pipeline.ingest into a fresh store (fetched, parsed, normalized, deduped);
- second ingest: every feed answers 304;
- baseline A: sequential httpx.get + feedparser.parse (default options) of each feed;
- baseline B: feedparser.parse alone (default options, one process) over the same bodies;
  both in a process of their own (bench/fetch_baselines.py).

Targets on a 2-core machine (500 feeds): first ingest >= 8x faster than A and
<= 0.6x B; the all-304 run under 3 s; peak memory under 300 MB.

Usage: python -m bench.fetch [--feeds 500] [--write]   (--write updates bench/RESULTS.md)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from aggregator import config as config_mod
from aggregator import pipeline, workers
from aggregator.store import Store

LATENCY = 0.1
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
RESULTS = Path(__file__).with_name("RESULTS.md")
# Realistic text: real feeds have large vocabularies, so two different posts
# share few word 3-grams (an earlier version drew every post from 16 words,
# which made LSH propose ~179,000 false near-duplicate pairs). A fixed seed
# keeps every run's data identical.
VOCAB_SEED = 20261122
EN_WORDS = 8000
ZH_CHARS = 3000
ZIPF_S = 1.07


def _vocabulary() -> tuple[list[str], list[float], list[str], list[float]]:
    """English-like pseudo-words and common Han characters, each with
    cumulative Zipf weights (rank r has weight 1 / r**ZIPF_S)."""
    rnd = random.Random(VOCAB_SEED)
    consonants, vowels = "bcdfghjklmnprstvwz", "aeiouy"
    words: set[str] = set()
    en: list[str] = []
    while len(en) < EN_WORDS:
        # Frequent words are short, as in real text: length grows with rank.
        syllables = 1 + min(len(en) // 400, 3) + rnd.randint(0, 1)
        w = "".join(rnd.choice(consonants) + rnd.choice(vowels) for _ in range(syllables))
        if rnd.random() < 0.3:
            w += rnd.choice(consonants)
        if w not in words:
            words.add(w)
            en.append(w)
    # The CJK Unified Ideographs block, shuffled: a fixed random subset and
    # order stands in for the frequency ranking of common characters.
    han = [chr(c) for c in range(0x4E00, 0x9FA6)]
    rnd.shuffle(han)
    zh = han[:ZH_CHARS]

    def cumulative(n: int) -> list[float]:
        out, total = [], 0.0
        for r in range(1, n + 1):
            total += 1 / r**ZIPF_S
            out.append(total)
        return out

    return en, cumulative(len(en)), zh, cumulative(len(zh))


EN, EN_CUM, ZH, ZH_CUM = _vocabulary()


def _sentence_en(rnd: random.Random) -> str:
    ws = rnd.choices(EN, cum_weights=EN_CUM, k=rnd.randint(8, 24))
    return ws[0].capitalize() + " " + " ".join(ws[1:]) + rnd.choice(".....?!")


def _sentence_zh(rnd: random.Random) -> str:
    return "".join(rnd.choices(ZH, cum_weights=ZH_CUM, k=rnd.randint(12, 40))) + "。"


def make_feed(i: int) -> bytes:
    rnd = random.Random(i)
    entries = []
    for j in range(rnd.randint(20, 50)):
        zh = rnd.random() < 0.3
        sentence = _sentence_zh if zh else _sentence_en
        paras = []
        size = rnd.randint(1000, 5000)
        total = 0
        while total < size:
            text = ("" if zh else " ").join(sentence(rnd) for _ in range(rnd.randint(2, 5)))
            para = f'<p>{text} <a href="/posts/{i}/{j}/ref">link</a> <em>note</em></p>'
            paras.append(para)
            total += len(para.encode())
        html = "".join(paras).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if zh:
            title = "".join(rnd.choices(ZH, cum_weights=ZH_CUM, k=8))
        else:
            title = " ".join(rnd.choices(EN, cum_weights=EN_CUM, k=6)).capitalize()
        entries.append(
            f"<entry><id>urn:bench:{i}:{j}</id><title>{title}</title>"
            f'<link href="https://site{i}.example/posts/{j}/"/>'
            f"<updated>2026-11-{1 + j % 20:02d}T08:00:00Z</updated>"
            f"<author><name>Author {i}</name></author>"
            f'<category term="bench"/><content type="html">{html}</content></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Feed {i}</title><id>urn:bench:{i}</id><updated>2026-11-20T00:00:00Z</updated>"
        f'<link href="https://site{i}.example/"/>{"".join(entries)}</feed>'
    ).encode()


def serve(directory: str) -> None:
    """The slow server (runs in its own process): files from `directory`, ETag = hash."""
    root = Path(directory)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            time.sleep(LATENCY)
            path = root / self.path.lstrip("/")
            body = path.read_bytes()
            etag = '"' + hashlib.md5(body).hexdigest() + '"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # The default listen backlog of 5 drops concurrent connections (SYN retried after 1 s).
        request_queue_size = 1024

    Server(("127.0.0.1", int(os.environ["BENCH_PORT"])), Handler).serve_forever()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=500)
    ap.add_argument("--write", action="store_true", help="record the figures in bench/RESULTS.md")
    args = ap.parse_args()
    n = args.feeds

    with tempfile.TemporaryDirectory() as tmp:
        feeds_dir = Path(tmp) / "feeds"
        feeds_dir.mkdir()
        total_bytes = 0
        for i in range(n):
            body = make_feed(i)
            total_bytes += len(body)
            (feeds_dir / f"{i}.atom").write_bytes(body)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-c", f"from bench.fetch import serve; serve({str(feeds_dir)!r})"],
            env={**os.environ, "BENCH_PORT": str(port)},
        )
        try:
            for _ in range(100):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/0.atom", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            urls = [f"http://127.0.0.1:{port}/{i}.atom" for i in range(n)]
            figures = run(Path(tmp), urls, total_bytes)
        finally:
            server.terminate()
            server.wait()
    report(figures, n, args.write)


def run(tmp: Path, urls: list[str], total_bytes: int) -> dict[str, float]:
    (tmp / "content").mkdir()
    data = {
        "site": {"base_url": "https://digest.example.org/"},
        "content": {"dir": "content"},
        "feeds": [{"url": u} for u in urls],
        "database": {"url": "sqlite:///data/bench.db"},
        # One host serves every feed here, so the per-host limit is the global
        # one. 32 is the default concurrency: more costs CPU in httpcore's
        # connection pool (it scans every connection per request) and gains
        # nothing here, where parsing, not latency, bounds the first ingest.
        "fetch": {"concurrency": 32, "per_host": 32},
    }
    config = config_mod.parse(data, tmp / "config.toml")
    f: dict[str, float] = {"mb": total_bytes / 1e6}

    store = Store.open(config.database.url)
    t = time.perf_counter()
    first = pipeline.ingest(config, store, NOW, all_feeds=True)
    f["first"] = time.perf_counter() - t
    assert not first.failures, first.failures[:3]
    f["entries"] = store.entry_count()
    t = time.perf_counter()
    second = pipeline.ingest(config, store, NOW, all_feeds=True)
    f["second"] = time.perf_counter() - t
    assert all(r.fetch == "not modified" for r in second.results[1:]), "expected 304s"
    store.close()
    workers.shutdown()  # the parser processes live on otherwise; reaped, they count below
    f["peak_main_mb"] = peak_mb(resource.RUSAGE_SELF)
    f["peak_worker_mb"] = peak_mb(resource.RUSAGE_CHILDREN)

    # The baselines run in a fresh process that imports only feedparser and
    # httpx: feedparser as installed, not as aggregator configures it here.
    out = subprocess.run(
        [sys.executable, "-m", "bench.fetch_baselines", *urls],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    f.update(json.loads(out.stdout))
    return f


def report(f: dict[str, float], n: int, write: bool) -> None:
    load = os.getloadavg()
    lines = [
        f"{n} feeds, {f['mb']:.1f} MB of XML, {int(f['entries'])} entries, "
        f"{LATENCY * 1000:.0f} ms latency per request; {os.cpu_count()} CPUs; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine)",
        "",
        "| measure | seconds | per feed (ms) |",
        "|---|---|---|",
        f"| first ingest (fetch, parse, normalize, store, dedupe) | {f['first']:.2f} "
        f"| {f['first'] / n * 1000:.1f} |",
        f"| second ingest, every feed 304 | {f['second']:.2f} | {f['second'] / n * 1000:.1f} |",
        f"| baseline A: sequential fetch + feedparser.parse | {f['sequential']:.2f} "
        f"| {f['sequential'] / n * 1000:.1f} |",
        f"| baseline B: feedparser.parse alone | {f['feedparser']:.2f} "
        f"| {f['feedparser'] / n * 1000:.1f} |",
        "",
        f"- speed-up over baseline A: **{f['sequential'] / f['first']:.1f}x** (target >= 8x)",
        f"- first ingest / baseline B: **{f['first'] / f['feedparser']:.2f}x** (target <= 0.6x)",
        f"- all-304 run: **{f['second']:.2f} s** (target < 3 s)",
        f"- peak memory: main process **{f['peak_main_mb']:.0f} MB** (after the two ingests), "
        f"largest parser process **{f['peak_worker_mb']:.0f} MB** (target < 300 MB)",
    ]
    text = "\n".join(lines)
    print(text)
    if write:
        head = "<!-- bench:fetch -->\n## Fetching feeds (bench/fetch.py)\n\n"
        section = f"{head}{text}\n<!-- /bench:fetch -->"
        old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
        start, end = old.find("<!-- bench:fetch -->"), old.find("<!-- /bench:fetch -->")
        if start >= 0 and end > start:
            new = old[:start] + section + old[end + len("<!-- /bench:fetch -->") :]
        else:
            new = old.rstrip("\n") + "\n\n" + section + "\n"
        RESULTS.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
