"""The email commands on a copy of the bundled example: send --dry-run, preview, subscribers."""

from __future__ import annotations

import email
import re
from datetime import datetime
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from lxml import html as lxml_html

from aggregator.cli import cli


def run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def test_dry_run_on_the_example_writes_eml_files_a_mail_client_can_open(
    example: Path, fixed_now: datetime, tmp_path: Path
) -> None:
    assert run(example, "run").exit_code == 0
    assert run(example, "subscribers", "add", "ada@example.com", "--name", "Ada").exit_code == 0
    outbox = tmp_path / "outbox"
    result = run(example, "send", "--dry-run", "--outbox", str(outbox))
    assert result.exit_code == 0, result.output
    assert "dry run, 2 .eml files written" in result.output
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 2
    for path in files:
        raw = path.read_bytes()
        assert b"\r\n" in raw and raw.isascii()  # 7-bit clean, CRLF: any client opens it
        msg = email.message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        assert not msg.defects
        assert all(not part.defects for part in msg.walk())
        assert msg.get_content_type() == "multipart/alternative"
        text_part = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
        assert text_part is not None and html_part is not None
        text, html = text_part.get_content(), html_part.get_content()
        assert text.startswith("INCOMING TRANSMISSION\r\nLATEST UPDATES")
        doc: Any = lxml_html.fromstring(html)
        assert len(doc.xpath("//h2/a")) == 10
        for header in ("Subject", "From", "To", "Date", "Message-ID", "List-Id"):
            assert msg[header], header
        assert re.fullmatch(r"<https://\S+>,\s*<mailto:\S+>", str(msg["List-Unsubscribe"]))
    # A dry run records nothing: the issue is composed and stored by the real send.
    assert "no issue 2026-W47" in run(example, "preview", "--issue", "2026-W47").output


def test_preview_prints_the_paths_it_wrote(example: Path, fixed_now: datetime) -> None:
    run(example, "run")
    result = run(example, "preview")
    assert result.exit_code == 0
    paths = [Path(line) for line in result.output.split()]
    assert [p.name for p in paths] == ["email.html", "email.txt"]
    assert all(p.is_file() for p in paths)
    missing = run(example, "preview", "--issue", "2020-W01")
    assert missing.exit_code == 1 and "no issue 2020-W01" in missing.output


def test_subscribers_add_list_remove_and_unsubscribe(example: Path, fixed_now: datetime) -> None:
    bad = run(example, "subscribers", "add", "not-an-address")
    assert bad.exit_code == 1 and "not an email address" in bad.output
    assert run(example, "subscribers", "add", "Ada@Example.com", "--name", "Ada").exit_code == 0
    listed = run(example, "subscribers", "list").output
    assert "reader@example.com (A. Reader)  [config.toml]" in listed
    assert "Ada@example.com (Ada)  [database]" in listed and "2 active" in listed
    removed = run(example, "subscribers", "remove", "ada@example.com")
    assert removed.exit_code == 0 and removed.output.startswith("unsubscribed: Ada@example.com")
    assert "1 active" in run(example, "subscribers", "list").output
    gone = run(example, "unsubscribe", "reader@example.com")
    assert gone.exit_code == 0 and "unsubscribed: reader@example.com" in gone.output
    assert "0 active" in run(example, "subscribers", "list").output
    unknown = run(example, "unsubscribe", "nobody-token")
    assert unknown.exit_code == 1 and "no subscriber" in unknown.output
    # An admin may add someone back.
    run(example, "subscribers", "add", "reader@example.com")
    assert "1 active" in run(example, "subscribers", "list").output


def test_a_bad_subscriber_address_in_config_is_refused_with_its_key(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    example.write_text(text.replace('"reader@example.com"', '"reader@@example"'), encoding="utf-8")
    result = run(example, "subscribers", "list")
    assert result.exit_code == 2
    assert "'subscribers[0].email' is not an email address" in result.output
