"""A SIGKILL anywhere in a real `aggregator ingest` leaves no article shown
twice once the next ingest has run, and loses nothing stored.

The feeds are what made the duplicates: items with no id, link or date (two
feeds big enough to be stored before the others are read), a mirror
carrying some of those items under ids and links of its own (dedupe links
the copies), and a slow feed that keeps the run open after the first store.
The feeds change a little between tries, as feeds do."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import config as config_mod
from aggregator.store import Store
from tests.daemon_helpers import ROOT, free_port, wait_for, write_config

#: id-less items in each of two big feeds: together more than
#: pipeline.ingestion.STORE_BATCH, so they are stored while the slow feed is
#: still being fetched (each under [fetch] max_entries)
BIG = 510
VOCABULARY = [f"w{n}" for n in range(2000)]


def words(seed: str) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCABULARY) for _ in range(40))


def id_less(name: str) -> str:
    return f"<item><title>{name}</title><description>{words(name)}</description></item>"


def rss(title: str, items: list[str]) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}'
        f"</title><link>https://{title}.example/</link>{''.join(items)}</channel></rss>"
    )


class Feeds:
    """The feeds of one try; `hold` keeps the slow feed's answer back."""

    def __init__(self, server: HTTPServer) -> None:
        self.bodies: dict[str, str] = {}
        self.hold = threading.Event()
        self.held = threading.Event()
        names = ("big-a", "big-b", "notes", "mirror", "slow")
        for name in names:
            server.expect_request(f"/{name}.rss").respond_with_handler(self.respond)
        self.urls = [server.url_for(f"/{n}.rss") for n in names]

    def respond(self, request: Request) -> Response:
        name = request.path.strip("/").removesuffix(".rss")
        if name == "slow" and self.hold.is_set():
            self.held.set()
            for _ in range(400):  # bounded: 20 s, released at the end of each try
                if not self.hold.is_set():
                    break
                time.sleep(0.05)
        return Response(self.bodies[name], content_type="application/rss+xml")

    def change(self, attempt: int) -> list[str]:
        """New bodies for `attempt`: an item more, the order rotated. The titles
        every article of them has."""
        big = {
            part: [f"Big {part} {i}" for i in range(BIG)]
            + [f"Big {part} extra {n}" for n in range(attempt)]
            for part in "ab"
        }
        notes = [f"Note {i}" for i in range(5 + attempt)]
        rotated = notes[attempt % len(notes) :] + notes[: attempt % len(notes)]
        for part, items in big.items():
            self.bodies[f"big-{part}"] = rss(f"big-{part}", [id_less(t) for t in items[::-1]])
        self.bodies["notes"] = rss("notes", [id_less(t) for t in rotated])
        # The mirror carries three of the notes, under its own guids and links.
        copies = [
            f"<item><title>Note {i}</title><guid>https://mirror.example/{i}</guid>"
            f"<link>https://mirror.example/{i}</link><pubDate>Mon, 02 Nov 2026 08:00:00 GMT"
            f"</pubDate><description>{words(f'Note {i}')}</description></item>"
            for i in range(3)
        ]
        self.bodies["mirror"] = rss("mirror", copies)
        self.bodies["slow"] = rss("slow", [id_less(f"Slow {attempt}")])
        return big["a"] + big["b"] + notes + [f"Slow {n}" for n in range(attempt + 1)]


@pytest.fixture
def feeds() -> Iterator[Feeds]:
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    f = Feeds(server)
    try:
        yield f
    finally:
        f.hold.clear()
        server.clear()
        server.stop()


def ingest(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "--config", str(config), "ingest", "--all"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=config.parent,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def entry_count(db: Path) -> int:
    if not db.exists():
        return 0
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return int(con.execute("select count(*) from entries").fetchone()[0])
    except sqlite3.OperationalError:  # tables not made yet
        return 0
    finally:
        con.close()


def shown(config: Path) -> Counter[str]:
    conf = config_mod.load(config)
    store = Store.open(conf.database.url)
    try:
        later = datetime.now(UTC) + timedelta(days=1)
        return Counter(s.entry.title for s in store.visible_entries(later))
    finally:
        store.close()


#: when each try kills: "stored" = once the big feeds are stored while the slow
#: feed is held; a number = that share of the last whole ingest's duration
#: after the start (a whole run measured on this machine, so the kills fall
#: early, midway and late in the run however fast it is)
KILLS: list[str | float] = ["stored", 0.3, 0.55, 0.8]


def test_sigkill_during_ingest_leaves_no_article_twice(tmp_path: Path, feeds: Feeds) -> None:
    config = write_config(tmp_path, feeds.urls, free_port())
    db = tmp_path / "data" / "aggregator.db"
    killed = []
    whole = 0.0  # how long the last ingest left to finish took
    for attempt, when in enumerate(KILLS):
        titles = feeds.change(attempt)
        feeds.held.clear()
        if when == "stored":
            feeds.hold.set()
        before = entry_count(db)
        started = time.monotonic()
        proc = ingest(config)
        try:
            if when == "stored":
                wait_for("the slow feed to be held", feeds.held.is_set, timeout=30)
                stored = partial(lambda n: entry_count(db) >= n, before + 2 * BIG)
                wait_for("the big feeds stored", stored, timeout=30)
            else:
                time.sleep(max(0.0, started + float(when) * whole - time.monotonic()))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            feeds.hold.clear()
        if proc.returncode == -signal.SIGKILL:
            killed.append(when)
        # The next ingest, left to finish.
        started = time.monotonic()
        done = ingest(config)
        _out, err = done.communicate(timeout=60)
        whole = time.monotonic() - started
        assert done.returncode == 0, err.decode()
        visible = shown(config)
        twice = sorted(t for t, n in visible.items() if n > 1)
        assert not twice, f"try {attempt} (kill at {when}): {len(twice)} shown twice: {twice[:5]}"
        lost = sorted(set(titles) - set(visible))
        assert not lost, f"try {attempt} (kill at {when}): {len(lost)} lost: {lost[:5]}"
    # A run that ends before its kill tests nothing: most must have been killed.
    assert "stored" in killed and len(killed) >= 3, killed


def test_a_build_after_an_ingest_killed_before_dedupe_shows_no_copy_twice(
    tmp_path: Path,
) -> None:
    """Killed after storing a feed and its mirror, before judging them: the
    next thing to run is a build (the daemon's build at start, a cron
    `build`); it judges what was left first."""
    hold = threading.Event()
    hold.set()
    titles = [f"Shared {i}" for i in range(BIG)]
    copies = [
        f"<item><title>{t}</title><guid>https://mirror.example/{i}</guid>"
        f"<link>https://mirror.example/{i}</link><description>{words(t)}</description></item>"
        for i, t in enumerate(titles)
    ]
    bodies = {
        "plain": rss("plain", [id_less(t) for t in titles]),
        "mirror": rss("mirror", copies),
        "other": rss("other", [id_less("Other 1")]),
        "slow": rss("slow", [id_less("Slow")]),
    }

    def respond(request: Request) -> Response:
        name = request.path.strip("/").removesuffix(".rss")
        for _ in range(400):  # bounded: 20 s
            if name != "slow" or not hold.is_set():
                break
            time.sleep(0.05)
        return Response(bodies[name], content_type="application/rss+xml")

    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    try:
        for name in bodies:
            server.expect_request(f"/{name}.rss").respond_with_handler(respond)
        config = write_config(tmp_path, [server.url_for(f"/{n}.rss") for n in bodies], free_port())
        db = tmp_path / "data" / "aggregator.db"
        proc = ingest(config)
        try:
            wait_for("both stored", lambda: entry_count(db) >= 2 * BIG, timeout=30)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            hold.clear()
        built = subprocess.run(
            [sys.executable, "-m", "aggregator", "--config", str(config), "build"],
            capture_output=True, cwd=config.parent, timeout=60,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
    finally:
        server.clear()
        server.stop()
    assert built.returncode == 0, built.stderr.decode()
    visible = shown(config)
    assert set(titles) <= set(visible)
    assert [t for t, n in visible.items() if n > 1] == []
    feed = json.loads((tmp_path / "public" / "feed.json").read_text(encoding="utf-8"))
    shown_in_feed = Counter(item["title"] for item in feed["items"])
    assert shown_in_feed and max(shown_in_feed.values()) == 1
