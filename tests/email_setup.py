"""Helpers for the email tests: point the example's config at a test SMTP server,
and check that a send reached everyone exactly once."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.model import DeliveryStatus
from aggregator.store import Store
from tests.smtp_server import SmtpServer


def configure(
    config_path: Path,
    port: int,
    subscribers: Sequence[tuple[str, str]] = (),
    **email: object,
) -> Config:
    """Rewrite the example's config.toml: SMTP port, [email] keys, subscribers."""
    text = config_path.read_text(encoding="utf-8")
    email = {"smtp_port": port, "rate_limit": 0.0, "retry_backoff": 0.01, **email}
    for key, value in email.items():
        toml = _toml(value)
        line = f"{key} = {toml}"
        text, n = re.subn(rf"(?m)^{key} = .*$", line.replace("\\", "\\\\"), text, count=1)
        if n == 0:
            text = text.replace("[email]\n", f"[email]\n{key} = {toml}\n", 1)
    if subscribers:
        text = text.split("[[subscribers]]")[0]
        for address, name in subscribers:
            text += f"\n[[subscribers]]\nemail = {_toml(address)}\nname = {_toml(name)}\n"
    config_path.write_text(text, encoding="utf-8")
    return config_mod.load(config_path)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    # JSON's escapes (\\n, \\uXXXX, ...) are valid in TOML basic strings.
    return json.dumps(str(value), ensure_ascii=True)


def set_site_title(config_path: Path, title: str) -> Config:
    """Give the site a new title (it goes into the Subject and List-Id)."""
    text = config_path.read_text(encoding="utf-8")
    text = re.sub(
        r'(?m)^title = "INCOMING TRANSMISSION"$', lambda _m: f"title = {_toml(title)}", text
    )
    config_path.write_text(text, encoding="utf-8")
    return config_mod.load(config_path)


def set_site_language(config_path: Path, language: str, timezone: str | None = None) -> Config:
    """Set [site] language (and timezone): the email's words and dates follow them."""
    text = config_path.read_text(encoding="utf-8")
    text = re.sub(r'(?m)^language = ".*"$', f"language = {_toml(language)}", text, count=1)
    if timezone:
        text = re.sub(r'(?m)^timezone = ".*"$', f"timezone = {_toml(timezone)}", text, count=1)
    config_path.write_text(text, encoding="utf-8")
    return config_mod.load(config_path)


def check_exactly_once(
    server: SmtpServer, database_url: str, addresses: Sequence[str], issue_key: str | None = None
) -> list[str]:
    """Nobody got two copies of the issue, and everyone got one except a delivery
    on record as uncertain (killed mid-handover: see newsletter/smtp.py). Returns
    the uncertain addresses."""
    counts = server.handler.count_by_rcpt()
    assert max(counts.values()) == 1, {a: c for a, c in counts.items() if c > 1}
    store = Store.open(database_url)
    try:
        by_id = {s.id: s.email for s in store.subscribers()}
        if issue_key is None:
            (issue,) = store.issues()
            issue_key = issue.key
        records = store.deliveries(issue_key)
    finally:
        store.close()
    uncertain = [by_id[i] for i, d in records.items() if d.status is DeliveryStatus.UNCERTAIN]
    assert {d.status for d in records.values()} <= {DeliveryStatus.SENT, DeliveryStatus.UNCERTAIN}
    assert {by_id[i] for i in records} == set(addresses)  # a final record for everyone
    missing = [a for a in addresses if counts.get(a, 0) != 1]
    # Only a delivery killed mid-handover may be missing, and it is on record as uncertain.
    assert set(missing) <= set(uncertain)
    return uncertain


def big_feed(n: int, now: datetime, age: timedelta = timedelta(days=5)) -> str:
    """An Atom feed of `n` entries of realistic size (with CJK and math), all
    published around `age` before `now`: for oversized email issues."""
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    items = []
    for i in range(n):
        when = (now - age - timedelta(minutes=n - i)).isoformat()
        body = (words * 12) + f" 数学 \\(x_{i}^2\\) 第{i}篇"
        items.append(
            f"<entry><id>urn:big:{i}</id><title>Firehose post {i}: a long title for size</title>"
            f'<link href="https://firehose.example.com/posts/{i}/"/>'
            f"<published>{when}</published><updated>{when}</updated>"
            f'<content type="html">&lt;p&gt;{body}&lt;/p&gt;</content></entry>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        "<id>urn:big</id><title>Firehose</title>"
        f"<updated>{now.isoformat()}</updated>" + "".join(items) + "</feed>"
    )
