"""Email issue sizes and timings: the bundled example's issue and a 200-entry issue.

Prints figures and records them in bench/RESULTS.md between the
`<!-- bench:email -->` markers. Run: .venv/bin/python -m bench.email_issue
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator import config as config_mod
from aggregator import newsletter, pipeline
from aggregator.newsletter import message
from aggregator.store import Store
from tests.email_setup import big_feed

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
START, END = "<!-- bench:email -->", "<!-- /bench:email -->"


def _example(tmp: Path) -> Path:
    for name in ("content", "examples"):
        shutil.copytree(ROOT / name, tmp / name)
    shutil.copy(ROOT / "config.toml", tmp / "config.toml")
    return tmp / "config.toml"


def _measure(config_path: Path, label: str) -> str:
    config = config_mod.load(config_path)
    store = Store.open(config.database.url)
    try:
        pipeline.ingest(config, store, NOW)
        t0 = time.perf_counter()
        issue = newsletter.compose_issue(config, store, NOW)
        took = time.perf_counter() - t0
    finally:
        store.close()
    html = message.personalize(issue.html, "x" * 32)
    size = message.encoded_html_size(html)
    return (
        f"| {label} | {issue.entry_count} | {issue.shown_count}"
        f" | {len(html.encode()) / 1024:.1f} KB | {size / 1024:.1f} KB"
        f" | {len(issue.text.encode()) / 1024:.1f} KB | {took:.2f} s |"
    )


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        rows.append(_measure(_example(Path(d)), "bundled example"))
    with tempfile.TemporaryDirectory() as d:
        config_path = _example(Path(d))
        (Path(d) / "examples" / "feeds" / "big.atom").write_text(
            big_feed(200, NOW, timedelta(days=3)), encoding="utf-8"
        )
        text = config_path.read_text(encoding="utf-8").replace(
            "[database]",
            '[[feeds]]\nurl = "examples/feeds/big.atom"\nname = "Firehose"\n\n[database]',
        )
        config_path.write_text(text, encoding="utf-8")
        rows.append(_measure(config_path, "example + 200-entry feed"))
    load = os.getloadavg()
    table = "\n".join(
        [
            "## Email issue",
            "",
            f"`python -m bench.email_issue`, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            " (shared 2-core machine). Target: HTML part under 90 KB encoded"
            " (Gmail clips at about 102 KB).",
            "",
            "| issue | entries | shown | HTML | HTML encoded | text | compose (render + fit) |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(table)
    results = ROOT / "bench" / "RESULTS.md"
    old = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    block = f"{START}\n{table}\n{END}"
    if START in old and END in old:
        new = old[: old.index(START)] + block + old[old.index(END) + len(END) :]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
