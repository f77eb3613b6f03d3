"""The two baselines of bench/fetch.py, run in a process of their own.

Baseline A: for each feed in turn, httpx.get then feedparser.parse (default
options). Baseline B: feedparser.parse alone (default options) over the same
bodies, one process. This module imports nothing from aggregator, so
feedparser runs exactly as installed (aggregator gives feedparser its own
SAX driver in processes that import it).

Usage: python -m bench.fetch_baselines URL...   (prints {"sequential": s, "feedparser": s})
"""

from __future__ import annotations

import json
import sys
import time

import feedparser
import httpx


def measure(urls: list[str]) -> dict[str, float]:
    """Seconds taken by baseline A and baseline B over `urls`."""
    bodies = []
    t = time.perf_counter()
    with httpx.Client() as client:
        for url in urls:
            body = client.get(url).content
            feedparser.parse(body)
            bodies.append(body)
    sequential = time.perf_counter() - t
    t = time.perf_counter()
    for body in bodies:
        feedparser.parse(body)
    return {"sequential": sequential, "feedparser": time.perf_counter() - t}


if __name__ == "__main__":
    assert "aggregator" not in sys.modules
    print(json.dumps(measure(sys.argv[1:])))
