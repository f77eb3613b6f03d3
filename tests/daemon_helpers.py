"""Helpers for running `aggregator daemon` as a real subprocess in tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import feedparser

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


def atom_feed(
    titles: list[str], base: str = "https://friend.example/", updated: str | None = None
) -> str:
    """A small valid Atom feed, one entry per title, newest first; `updated`
    (RFC 3339) dates every entry, default fixed days in November 2026."""

    def date(i: int) -> str:
        return updated or f"2026-11-{10 + i % 10:02d}T08:00:00Z"

    entries = "".join(
        f"""<entry><id>{base}posts/{i}</id><title>{t}</title>
<link href="{base}posts/{i}/"/><updated>{date(i)}</updated>
<content type="html">&lt;p&gt;{t}: some words about it, enough for an excerpt.&lt;/p&gt;</content>
</entry>"""
        for i, t in enumerate(titles)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Friend</title><id>{base}</id>
<updated>2026-11-20T08:00:00Z</updated><author><name>Friend</name></author>{entries}</feed>"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    root: Path,
    feeds: list[str],
    port: int,
    extra: str = "",
    min_interval_minutes: float = 0.005,
    **daemon: Any,
) -> Path:
    """A config under `root` with an (empty or given) content dir and these feeds."""
    (root / "content").mkdir(exist_ok=True)
    settings = {"port": port, "ingest_interval": 0.5, "shutdown_timeout": 5, **daemon}
    lines = [
        "[site]",
        'base_url = "https://blog.example.org/"',
        "[digest]",
        "page_size = 5",
        *(f'[[feeds]]\nurl = "{u}"\nname = "Feed {i}"' for i, u in enumerate(feeds)),
        # Feeds fall due again at once (a feed due within sources/schedule.py's
        # GRACE of 2 minutes is fetched now): every ingest fetches every feed.
        "[fetch]",
        f"min_interval_minutes = {min_interval_minutes}",
        "[daemon]",
        *(f"{k} = {json.dumps(v)}" for k, v in settings.items()),
        extra,
    ]
    path = root / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """Poll `check` until it returns something truthy (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class DaemonProcess:
    """`aggregator daemon` in a subprocess, its log in a file."""

    def __init__(
        self,
        config: Path,
        port: int,
        log_format: str = "json",
        clock_file: Path | None = None,
        verbose: bool = True,
    ) -> None:
        """`clock_file`: run with the aggregator's clock ahead by the seconds in
        that file (tests/shifted_clock.py), so a test can let a week pass;
        `verbose`: with -v (INFO lines), else at the default log level."""
        self.config = config
        self.port = port
        self.log_path = config.parent / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        program = ["tests.shifted_clock", str(clock_file)] if clock_file else ["aggregator"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *program, "--config", str(config),
             *(["-v"] if verbose else []), "--log-format", log_format, "daemon"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=config.parent,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(
        self, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url(path), headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()

    def health(self) -> dict[str, Any] | None:
        try:
            status, _, body = self.get("/healthz")
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()


def open_runs(db: Path) -> list[tuple[str, str | None, int | None]]:
    """(job, finished, ok) of every run, read directly from the SQLite file."""
    if not db.exists():
        return []
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.OperationalError:
        return []
    try:
        return [tuple(r) for r in con.execute("select job, finished, ok from runs order by id")]
    except sqlite3.OperationalError:  # the daemon has not created its tables yet
        return []
    finally:
        con.close()


def integrity(db: Path) -> str:
    con = sqlite3.connect(db, timeout=10)
    try:
        return str(con.execute("pragma integrity_check").fetchone()[0])
    finally:
        con.close()


def complete_outputs(public: Path) -> None:
    """Every output parses and ends properly: nothing half-written."""
    atoms = list(public.rglob("*.atom"))
    assert atoms
    for path in atoms:
        parsed = feedparser.parse(path.read_bytes())
        assert not parsed.bozo, f"{path}: {parsed.get('bozo_exception')}"
    for path in public.rglob("*.html"):
        assert path.read_text(encoding="utf-8").rstrip().endswith("</html>"), path
