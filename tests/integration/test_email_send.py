"""The email digest sent to a real SMTP server (aiosmtpd on 127.0.0.1), messages parsed back."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from lxml import html as lxml_html

from aggregator import newsletter, pipeline, settings
from aggregator.config import Config
from aggregator.errors import ConfigError
from aggregator.model import DeliveryStatus, SubscriberStatus
from aggregator.store import Store
from tests.conftest import NOW
from tests.email_setup import big_feed, configure, set_site_language, set_site_title
from tests.smtp_server import SmtpServer, free_port

READERS = [("ada@example.com", "Ada Lovelace"), ("lin@example.org", "林"), ("bo@example.net", "")]


def open_store(config: Config) -> Store:
    return Store.open(config.database.url)


def ingested(example: Path, server: SmtpServer, **email: object) -> tuple[Config, Store]:
    config = configure(example, server.port, READERS, **email)
    store = open_store(config)
    pipeline.ingest(config, store, NOW)
    return config, store


def parts(msg: EmailMessage) -> tuple[str, str]:
    assert msg.get_content_type() == "multipart/alternative"
    sub = list(msg.iter_parts())
    assert [p.get_content_type() for p in sub] == ["text/plain", "text/html"]
    for p in sub:
        assert p.get_content_charset() == "utf-8"
    text, html = (p.get_content() for p in sub)
    assert isinstance(text, str) and isinstance(html, str)
    return text, html


def unsubscribe_urls(msg: EmailMessage) -> list[str]:
    return re.findall(r"<([^>]+)>", str(msg["List-Unsubscribe"]))


def test_issue_reaches_every_subscriber_once_with_a_well_formed_message(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server)
    report = newsletter.send(config, store, NOW)
    assert report.issue == "2026-W47" and report.sent == 3 and not report.failures
    received = smtp_server.handler.received
    assert sorted(r.rcpt_tos[0] for r in received) == sorted(a for a, _ in READERS)
    tokens = {s.email: s.token for s in store.subscribers()}
    ids = set()
    for r in received:
        msg = r.message()
        assert not msg.defects
        rcpt = r.rcpt_tos[0]
        assert parseaddr(str(msg["To"]))[1] == rcpt
        assert str(msg["From"]) == "Lin Wei <digest@blog.example.org>"
        assert r.mail_from == "digest@blog.example.org"
        assert str(msg["Subject"]) == "INCOMING TRANSMISSION: 10 new posts, 2026-W47"
        assert msg["Date"] and msg["List-Id"] == "INCOMING TRANSMISSION <digest.blog.example.org>"
        ids.add(str(msg["Message-ID"]))
        https, mailto = unsubscribe_urls(msg)
        assert https == f"https://blog.example.org/unsubscribe/{tokens[rcpt]}"
        assert mailto.startswith("mailto:digest@blog.example.org?subject=unsubscribe")
        assert tokens[rcpt] in mailto
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        text, html = parts(msg)
        assert text.splitlines()[:2] == ["INCOMING TRANSMISSION", "LATEST UPDATES"]
        for line in text.splitlines():
            assert len(line) <= 72 or "://" in line, line
        # the words and dates of a zh-CN site are Chinese, as on its web pages
        assert f"退订：{https}" in text
        assert "亦见于：Friend's Notebook" in text and "2026年11月20日" in text
        assert "\\(" in text or "$" in text  # math comes through as written
        doc: Any = lxml_html.fromstring(html)
        visible = doc.text_content()
        assert visible.index("INCOMING TRANSMISSION") < visible.index("LATEST UPDATES")
        assert not doc.xpath("//script | //form | //link | //iframe")
        styles = doc.xpath("//style")
        assert len(styles) == 1 and "@media" in styles[0].text
        without_media = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^}]*\})*[^}]*\}", "", styles[0].text)
        assert without_media.strip() == ""  # only media queries and dark mode are kept
        assert "!important" in styles[0].text  # premailer left them be
        assert doc.xpath("//td[@class='entry'][@style]"), "CSS was not inlined"
        assert len(doc.xpath("//h2/a")) == 10
        assert doc.xpath("//table[@class='container']/@width") == ["600"]  # for Outlook
        links = {a.text_content().strip(): a.get("href") for a in doc.xpath("//a")}
        assert links["在浏览器中查看"] == "https://blog.example.org/issues/2026-W47.html"
        assert links["退订"] == https
        assert "亦见于：Friend's Notebook" in visible and "2026年11月20日" in visible
        for english in ("Also in", "View in browser", "Unsubscribe", "new posts", "November"):
            assert english not in visible and english not in text
        for img in doc.xpath("//img"):
            assert img.get("alt") is not None and img.get("width")
        assert "随笔" in html and "冬天" in text  # CJK intact in both parts
        assert len(r.data) < 90 * 1024
    assert len(ids) == 3  # one Message-ID per subscriber
    archive = config.output.dir / "issues" / "2026-W47.html"
    assert archive.is_file() and "Weekly reading #47" in archive.read_text(encoding="utf-8")
    archive_doc: Any = lxml_html.fromstring(archive.read_text(encoding="utf-8"))
    archive_text = archive_doc.text_content()
    assert "2026-W47 期" in archive_text and "亦见于：" in archive_text
    assert "the issue of" not in archive_text and "Also in" not in archive_text


def test_an_english_site_gets_an_english_email(example: Path, smtp_server: SmtpServer) -> None:
    set_site_language(example, "en")
    config, store = ingested(example, smtp_server)
    newsletter.send(config, store, NOW)
    msg = smtp_server.handler.received[0].message()
    text, html = parts(msg)
    https = unsubscribe_urls(msg)[0]
    assert text.splitlines()[:3] == [
        "INCOMING TRANSMISSION",
        "LATEST UPDATES",
        "2026-W47 · 10 new posts",
    ]
    assert f"Unsubscribe: {https}" in text
    assert "View in browser: https://blog.example.org/issues/2026-W47.html" in text
    assert "Also in: Friend's Notebook" in text and "November 20, 2026" in text
    doc: Any = lxml_html.fromstring(html)
    links = {a.text_content().strip(): a.get("href") for a in doc.xpath("//a")}
    assert links["View in browser"] == "https://blog.example.org/issues/2026-W47.html"
    assert links["Unsubscribe"] == https
    visible = doc.text_content()
    assert "You receive INCOMING TRANSMISSION because you subscribed to it." in visible
    assert "Also in: Friend's Notebook" in visible and "November 20, 2026" in visible
    for chinese in ("亦见于", "退订", "在浏览器中查看", "篇新文章", "年11月"):
        assert chinese not in visible and chinese not in text
    archive: Any = lxml_html.fromstring(
        (config.output.dir / "issues" / "2026-W47.html").read_text(encoding="utf-8")
    )
    assert "the issue of 2026-W47" in archive.text_content()


def test_sending_again_sends_nothing_and_the_next_issue_holds_only_new_entries(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server)
    newsletter.send(config, store, NOW)
    again = newsletter.send(config, store, NOW + timedelta(hours=2))
    assert again.sent == 0 and again.already == 3 and not again.composed
    assert len(smtp_server.handler.received) == 3

    # A week later: nothing new, nothing sent, nothing stored.
    later = NOW + timedelta(days=7)
    empty = newsletter.send(config, store, later)
    assert empty.empty and empty.issue is None
    assert store.issue("2026-W48") is None
    assert len(smtp_server.handler.received) == 3

    post = config.content.dir / "new-post.md"
    post.write_text("---\ntitle: A fresh post\ndate: 2026-11-28\n---\nFresh.\n", encoding="utf-8")
    pipeline.ingest(config, store, later)
    report = newsletter.send(config, store, later + timedelta(hours=1))
    assert report.issue == "2026-W48" and report.sent == 3
    text, _ = parts(smtp_server.handler.received[-1].message())
    assert "A fresh post" in text and "Weekly reading #47" not in text
    assert "2026-W48 · 1 篇新文章" in text


def test_empty_issue_is_sent_only_when_configured(example: Path, smtp_server: SmtpServer) -> None:
    config = configure(example, smtp_server.port, READERS, send_empty=True, max_age_days=1)
    store = open_store(config)
    pipeline.ingest(config, store, NOW + timedelta(days=30))
    report = newsletter.send(config, store, NOW + timedelta(days=30))
    assert report.sent == 3
    text, html = parts(smtp_server.handler.received[0].message())
    assert "这次没有新文章。" in text and "这次没有新文章。" in html
    assert "0 new posts" in str(smtp_server.handler.received[0].message()["Subject"])


def test_control_characters_never_make_a_header(example: Path, smtp_server: SmtpServer) -> None:
    config, store = ingested(example, smtp_server)
    evil = "Evil\r\nBcc: victim@example.com\nX-Injected: yes\x00\x85\u2028"
    # config.toml refuses such a title or name at load...
    kept = example.read_bytes()
    with pytest.raises(ConfigError, match=r"'site\.title' holds a control character"):
        set_site_title(example, evil)
    example.write_bytes(kept)
    # ...and a header is safe even when one arrives some other way
    config = configure(example, smtp_server.port, [("ada@example.com", "Ada")])
    config = replace(
        config,
        site=replace(config.site, title=evil),
        subscribers=(replace(config.subscribers[0], name=evil),),
    )
    assert "\n" in config.site.title
    report = newsletter.send(config, store, NOW)
    assert report.sent == 1
    r = smtp_server.handler.received[0]
    assert r.rcpt_tos == ["ada@example.com"]
    head = r.data.split(b"\r\n\r\n")[0].decode()
    names = [line.split(":")[0] for line in head.split("\r\n") if line and line[0] not in " \t"]
    assert "Bcc" not in names and "X-Injected" not in names
    msg = r.message()
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert str(msg["Subject"]).startswith("Evil Bcc: victim@example.com X-Injected: yes")
    assert "\n" not in str(msg["Subject"]) and "\n" not in str(msg["To"])


def test_oversized_issue_shows_the_newest_that_fit_and_links_the_archive(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server)
    feed = example.parent / "examples" / "feeds" / "big.atom"
    feed.write_text(big_feed(200, NOW), encoding="utf-8")
    text = config.path.read_text(encoding="utf-8")
    text = text.replace(
        "[database]",
        '[[feeds]]\nurl = "examples/feeds/big.atom"\nname = "Firehose"\n\n[database]',
    )
    config.path.write_text(text, encoding="utf-8")
    from aggregator import config as config_mod

    config = config_mod.load(config.path)
    pipeline.ingest(config, store, NOW)
    report = newsletter.send(config, store, NOW)
    assert report.sent == 3
    issue = store.issue("2026-W47")
    assert issue is not None and issue.entry_count == 210
    assert 20 < issue.shown_count < 210
    for r in smtp_server.handler.received:
        msg = r.message()
        html_part = next(p for p in msg.walk() if p.get_content_type() == "text/html")
        encoded = html_part.as_bytes().split(b"\n\n", 1)[1]
        assert len(encoded) < 90 * 1024
        text, html = parts(msg)
        more = 210 - issue.shown_count
        doc: Any = lxml_html.fromstring(html)
        assert len(doc.xpath("//h2/a")) == issue.shown_count
        link = doc.xpath("//td[@class='more']/a")[0]
        assert link.text_content().strip() == f"网页存档里还有 {more} 篇"
        assert link.get("href") == "https://blog.example.org/issues/2026-W47.html"
        lines = text.splitlines()
        at = lines.index(f"网页存档里还有 {more} 篇：")
        assert lines[at + 1] == "https://blog.example.org/issues/2026-W47.html"
        assert "</html>" in html  # whole, not clipped
        # The newest entries are the ones shown.
        assert "Firehose post 199" in html and "Firehose post 0:" not in html
    archive = (config.output.dir / "issues" / "2026-W47.html").read_text(encoding="utf-8")
    archive_doc: Any = lxml_html.fromstring(archive)
    assert len(archive_doc.xpath("//h2/a")) == 210


def test_unsubscribe_round_trip_skips_that_subscriber_next_time(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server)
    newsletter.send(config, store, NOW)
    ada = next(r for r in smtp_server.handler.received if r.rcpt_tos == ["ada@example.com"])
    https, _ = unsubscribe_urls(ada.message())
    token = https.rsplit("/", 1)[1]

    assert newsletter.unsubscribe(config, store, "no-such-token", NOW) is None
    first = newsletter.unsubscribe(config, store, token, NOW)
    second = newsletter.unsubscribe(config, store, token, NOW + timedelta(minutes=1))
    assert first is not None and second is not None
    assert first.email == "ada@example.com" and first.status is SubscriberStatus.UNSUBSCRIBED
    assert second == first  # idempotent

    later = NOW + timedelta(days=7)
    post = config.content.dir / "new-post.md"
    post.write_text("---\ntitle: After\ndate: 2026-11-28\n---\nNew.\n", encoding="utf-8")
    pipeline.ingest(config, store, later)
    report = newsletter.send(config, store, later)
    assert report.sent == 2
    assert [r.rcpt_tos for r in smtp_server.handler.received[3:]] == [
        ["lin@example.org"],
        ["bo@example.net"],
    ]
    # Staying listed in config.toml does not subscribe them again.
    newsletter.sync_subscribers(config, store, later)
    assert store.subscriber_by_email("ada@example.com").status is SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]


def test_transient_failures_are_retried_and_permanent_ones_recorded(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server)
    smtp_server.handler.refuse_rcpt["lin@example.org"] = ["451 try again later"]
    smtp_server.handler.refuse_data["bo@example.net"] = ["421 busy", "452 still busy"]
    smtp_server.handler.refuse_rcpt["ada@example.com"] = ["550 no such user"]
    report = newsletter.send(config, store, NOW)
    counts = smtp_server.handler.count_by_rcpt()
    assert counts == {"lin@example.org": 1, "bo@example.net": 1}
    assert report.sent == 2
    assert [f.location for f in report.failures] == ["ada@example.com"]
    assert "550" in report.failures[0].reason
    ada = store.subscriber_by_email("ada@example.com")
    assert ada is not None and ada.status is SubscriberStatus.BOUNCING
    records = store.deliveries("2026-W47")
    assert records[ada.id].status is DeliveryStatus.FAILED
    statuses = {r.status for sid, r in records.items() if sid != ada.id}
    assert statuses == {DeliveryStatus.SENT}
    assert max(r.attempts for r in records.values()) == 3  # bo: 421, 452, then 250


def test_transient_failures_beyond_the_retries_are_deferred_to_the_next_send(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server, retries=2)
    smtp_server.handler.refuse_rcpt["lin@example.org"] = ["451 later", "451 later"]
    report = newsletter.send(config, store, NOW)
    assert report.sent == 2 and "deferred" in report.failures[0].reason
    lin = store.subscriber_by_email("lin@example.org")
    assert lin is not None
    assert store.deliveries("2026-W47")[lin.id].status is DeliveryStatus.DEFERRED
    again = newsletter.send(config, store, NOW + timedelta(hours=1))
    assert again.sent == 1 and again.already == 2
    assert smtp_server.handler.count_by_rcpt()["lin@example.org"] == 1


def test_an_unreachable_server_stops_the_send_and_loses_nobody(
    example: Path, smtp_server: SmtpServer
) -> None:
    config, store = ingested(example, smtp_server)
    dead = configure(example, free_port(), READERS, retries=2)
    with pytest.raises(Exception, match="cannot connect"):
        newsletter.send(dead, store, NOW)
    report = newsletter.send(config, store, NOW + timedelta(minutes=5))
    assert report.sent == 3


def test_dry_run_writes_eml_files_and_records_nothing(
    example: Path, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config, store = ingested(example, smtp_server)
    outbox = tmp_path / "outbox"
    report = newsletter.send(config, store, NOW, dry_run=True, outbox=outbox)
    assert report.dry_run and len(report.written) == 3
    assert smtp_server.handler.received == []
    assert store.issue("2026-W47") is None  # nothing stored: the real send composes it
    from email import message_from_bytes, policy

    for path in sorted(outbox.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage) and not msg.defects
        parts(msg)
    real = newsletter.send(config, store, NOW)
    assert real.sent == 3


def test_subscribers_sync_from_config(example: Path, smtp_server: SmtpServer) -> None:
    config, store = ingested(example, smtp_server)
    newsletter.sync_subscribers(config, store, NOW)
    tokens = {s.email: s.token for s in store.subscribers()}
    assert len(set(tokens.values())) == 3 and all(len(t) == 32 for t in tokens.values())
    smaller = configure(example, smtp_server.port, READERS[1:])
    newsletter.sync_subscribers(smaller, store, NOW)
    ada = store.subscriber_by_email("ada@example.com")
    assert ada is not None and ada.status is SubscriberStatus.UNSUBSCRIBED and not ada.in_config
    back = configure(example, smtp_server.port, READERS)
    newsletter.sync_subscribers(back, store, NOW)
    ada = store.subscriber_by_email("ADA@example.com")
    assert ada is not None and ada.status is SubscriberStatus.ACTIVE
    assert {s.email: s.token for s in store.subscribers()} == tokens  # tokens kept


@pytest.mark.parametrize("when", [NOW, datetime(2027, 1, 1, 1, 0, tzinfo=NOW.tzinfo)])
def test_preview_writes_the_next_issue(
    example: Path, smtp_server: SmtpServer, when: datetime
) -> None:
    config, store = ingested(example, smtp_server)
    paths = newsletter.preview(config, store, when)
    assert [p.name for p in paths] == ["email.html", "email.txt"]
    assert (
        paths[1].read_text(encoding="utf-8").startswith("INCOMING TRANSMISSION\nLATEST UPDATES\n")
    )


def test_rate_limit_spaces_the_messages(example: Path, smtp_server: SmtpServer) -> None:
    from aggregator.newsletter import smtp

    config, store = ingested(example, smtp_server, rate_limit=4.0)
    newsletter.sync_subscribers(config, store, NOW)
    issue, _ = store.add_issue(newsletter.compose_issue(config, store, NOW))
    waits: list[float] = []
    sender = smtp.Sender(
        store, settings.smtp_settings(config), newsletter.list_headers(config), sleep=waits.append
    )
    out = sender.send(issue, store.subscribers())
    assert len(out.sent) == 3 and len(smtp_server.handler.received) == 3
    # No wait before the first message; before each later one, up to 1/rate seconds.
    assert len(waits) == 2 and all(0 < w <= 0.25 for w in waits)
