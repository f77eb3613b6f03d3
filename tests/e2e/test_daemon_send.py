"""`aggregator daemon` sending the email: a real subprocess, a real feed server
(pytest-httpserver) and a real SMTP server (aiosmtpd), all on 127.0.0.1.

`[daemon] send_interval` puts the send job on a seconds-level trigger (the
same job, run lock and exactly-once record as the weekly one), and the
daemon runs under tests/shifted_clock.py so that "a week later" is one
write to a file away.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import config as config_mod
from aggregator.model import DeliveryStatus
from tests.daemon_helpers import (
    ROOT,
    DaemonProcess,
    atom_feed,
    complete_outputs,
    free_port,
    integrity,
    wait_for,
    write_config,
)
from tests.email_setup import check_exactly_once
from tests.smtp_server import SmtpServer

WEEK = 7 * 24 * 3600
KEY = re.compile(r"\d{4}-W\d{2}")


class Feed:
    """A feed whose posts the test adds to, dated an hour before the test began
    (within the issue's max age, whatever the date)."""

    def __init__(self, titles: list[str]) -> None:
        self.titles = titles
        self.updated = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            body = atom_feed(list(self.titles), updated=self.updated)
        return Response(body, content_type="application/atom+xml")


@pytest.fixture
def feed(httpserver: HTTPServer) -> Iterator[Feed]:
    state = Feed(["Alpha arrives", "Beta follows"])
    httpserver.expect_request("/feed.atom").respond_with_handler(state)
    yield state


def email_section(smtp: SmtpServer, readers: list[str]) -> str:
    return "\n".join(
        [
            "[email]",
            'from = "Digest <digest@blog.example.org>"',
            'smtp_host = "127.0.0.1"',
            f"smtp_port = {smtp.port}",
            "rate_limit = 0",
            "retry_backoff = 0.01",
            *(f'[[subscribers]]\nemail = "{a}"' for a in readers),
        ]
    )


def sends(db: Path) -> list[str]:
    """The detail of every successful send run, oldest first."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute("select detail from runs where job = 'send' and ok = 1 order by id")
        return [str(r[0]) for r in rows]
    except sqlite3.OperationalError:  # tables not created yet
        return []
    finally:
        con.close()


def deliveries(db: Path) -> dict[str, str]:
    """email -> delivery status, across issues (read straight from the file)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        rows = con.execute(
            "select s.email, d.status from deliveries d"
            " join subscribers s on s.id = d.subscriber_id"
        )
        return {str(e): str(s) for e, s in rows}
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


def counts(smtp: SmtpServer) -> dict[str, int]:
    return smtp.handler.count_by_rcpt()


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def one_click(d: DaemonProcess, url: str) -> tuple[int, str]:
    """The RFC 8058 POST a mail client sends to the List-Unsubscribe https URL."""
    req = urllib.request.Request(
        d.url(urlsplit(url).path),
        data=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read().decode("utf-8")


def test_daemon_sends_each_issue_once_and_one_click_unsubscribe_skips_the_next(
    tmp_path: Path, httpserver: HTTPServer, feed: Feed, smtp_server: SmtpServer
) -> None:
    readers = ["ada@example.com", "lin@example.org", "bo@example.net"]
    port = free_port()
    db = tmp_path / "data" / "aggregator.db"
    offset = tmp_path / "clock-offset"
    offset.write_text("0", encoding="utf-8")
    config = write_config(
        tmp_path,
        [httpserver.url_for("/feed.atom")],
        port,
        extra=email_section(smtp_server, readers),
        send_interval=1.0,
    )
    received = smtp_server.handler.received

    d = DaemonProcess(config, port, clock_file=offset)
    try:
        wait_for("the first issue to reach everyone", lambda: len(received) >= 3, timeout=30)
        first = received[0].message()
        (key,) = KEY.findall(str(first["Subject"]))
        assert "Alpha arrives" in text_of(first)
        # two more scheduled fires: nothing more goes out
        fired = len(sends(db))
        wait_for("two more scheduled sends", lambda: len(sends(db)) >= fired + 2)
        assert counts(smtp_server) == dict.fromkeys(readers, 1)
        assert re.search(r"(: 0 sent, 3 had it|nothing new)", sends(db)[-1]), sends(db)
        health = d.health()
        assert health is not None and health["ok"] and health["failing_feeds"] == []
        assert health["last_send"] and health["last_build"] and health["last_ingest"]
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()

    # a restart: the interval send runs at once, and sends nothing more
    fired = len(sends(db))
    d = DaemonProcess(config, port, clock_file=offset)
    try:
        wait_for("a send after the restart", lambda: len(sends(db)) > fired)
        assert counts(smtp_server) == dict.fromkeys(readers, 1)
        assert len(received) == 3

        # one click in Ada's mail client, over real HTTP
        (ada,) = [r.message() for r in received if r.rcpt_tos == ["ada@example.com"]]
        https = re.findall(r"<(https://[^>]+)>", str(ada["List-Unsubscribe"]))[0]
        assert ada["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        status, page = one_click(d, https)
        assert status == 200 and "ada@example.com" in page

        # a week passes and a new post comes out: the next issue skips Ada
        with feed.lock:
            feed.titles.append("Gamma, a week later")
        offset.write_text(str(WEEK), encoding="utf-8")
        wait_for("the next issue", lambda: len(received) >= 5, timeout=30)
        fired = len(sends(db))
        wait_for("one more scheduled send", lambda: len(sends(db)) >= fired + 1)
        assert d.health() is not None
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()

    assert counts(smtp_server) == {"ada@example.com": 1, "lin@example.org": 2, "bo@example.net": 2}
    second = [r.message() for r in received[3:]]
    (next_key,) = {k for m in second for k in KEY.findall(str(m["Subject"]))}
    assert next_key > key  # a new week's issue
    for m in second:
        assert "Gamma, a week later" in text_of(m) and "Alpha arrives" not in text_of(m)

    # `aggregator status` reads the last issue from the issues table
    out = subprocess.run(
        [sys.executable, "-m", "aggregator", "--config", str(config), "status", "--json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    issues = json.loads(out.stdout)["issues"]
    assert issues["last_key"] == next_key and issues["deliveries"] == {"sent": 2}
    status = json.loads(out.stdout)["subscribers"]
    assert status["active"] == 2 and status["unsubscribed"] == 1
    assert integrity(db) == "ok"


@pytest.mark.slow
def test_sigkill_during_a_send_then_restart_delivers_to_everyone_once(
    tmp_path: Path, httpserver: HTTPServer, feed: Feed, smtp_server: SmtpServer
) -> None:
    readers = [f"reader{i:03d}@example.com" for i in range(100)]
    smtp_server.handler.delay = 0.05  # ~5 s for the whole list
    port = free_port()
    db = tmp_path / "data" / "aggregator.db"
    config = write_config(
        tmp_path,
        [httpserver.url_for("/feed.atom")],
        port,
        extra=email_section(smtp_server, readers),
        send_interval=1.0,
    )
    received = smtp_server.handler.received

    d = DaemonProcess(config, port)
    try:
        wait_for("the send to be under way", lambda: len(received) >= 20, timeout=60)
    finally:
        d.kill()
    at_kill = dict(deliveries(db))
    assert 20 <= len(at_kill) < len(readers), "the kill did not land mid-send"
    in_flight = [a for a, s in at_kill.items() if s not in ("sent", "failed")]
    assert len(in_flight) <= 1, at_kill  # one delivery at a time
    assert integrity(db) == "ok"
    complete_outputs(tmp_path / "public")
    (archive,) = (tmp_path / "public" / "issues").glob("*.html")
    assert archive.read_text(encoding="utf-8").rstrip().endswith("</html>")

    fired = len(sends(db))
    d = DaemonProcess(config, port)
    try:
        wait_for("the restarted daemon's send", lambda: len(sends(db)) > fired, timeout=60)
        assert d.stop() == 0
    finally:
        if d.proc.poll() is None:
            d.kill()
    assert integrity(db) == "ok"
    complete_outputs(tmp_path / "public")
    url = config_mod.load(config).database.url
    uncertain = check_exactly_once(smtp_server, url, readers)
    # The one promise with an exception (newsletter/smtp.py): a delivery killed
    # between "sending" and the server's reply is recorded uncertain and not
    # sent again; anything killed earlier is sent by the restarted daemon.
    assert set(uncertain) <= set(in_flight)
    if in_flight and at_kill[in_flight[0]] == str(DeliveryStatus.SENDING):
        assert uncertain == in_flight
    restarted = sends(db)[fired]
    print(f"at the kill: {len(at_kill)} records, in flight {in_flight}; after: {restarted}")
    m = re.fullmatch(rf"issue {KEY.pattern}: (\d+) sent, (\d+) had it(, 1 uncertain)?", restarted)
    assert m, restarted
    assert int(m[1]) + int(m[2]) + len(uncertain) == len(readers)
    assert int(m[1]) == len(readers) - len([a for a, s in at_kill.items() if s == "sent"]) - len(
        uncertain
    )
