"""Sending an issue: compose and store it once, then hand it to every active
subscriber who has not had it, exactly once each (smtp.py keeps the ledger).
Running it again resumes; a dry run writes .eml files and records nothing."""

from __future__ import annotations

import ssl
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from aggregator import settings
from aggregator.config import Config
from aggregator.deliver.files import write_outputs
from aggregator.errors import DeliveryError
from aggregator.model import DeliveryStatus, SendReport, SubscriberStatus
from aggregator.newsletter import issues, message, smtp
from aggregator.newsletter.compose import (
    archive_path,
    compose_issue,
    issue_images,
    unsubscribe_base,
)
from aggregator.newsletter.subscribers import sync_subscribers
from aggregator.store import Store


def list_headers(config: Config) -> message.ListHeaders:
    """From, List-Id and the unsubscribe addresses every message carries."""
    e = config.email
    if not e.from_:
        raise DeliveryError(f"{config.path}: set 'email.from' to send the email digest")
    sender = message.sender_address(e.from_)
    host = urlsplit(config.site.base_url).hostname or sender.domain
    return message.ListHeaders(
        sender=e.from_,
        list_id=e.list_id or f"{config.site.title} <digest.{host}>",
        unsubscribe_mailto=e.unsubscribe_mailto or sender.addr_spec,
        unsubscribe_url=unsubscribe_base(config),
    )


def send(
    config: Config,
    store: Store,
    now: datetime,
    *,
    issue_key: str | None = None,
    dry_run: bool = False,
    outbox: Path | None = None,
    resend_uncertain: bool = False,
    progress: smtp.Progress | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> SendReport:
    """Send this week's issue (or `issue_key`) to every active subscriber who
    has not had it, exactly once each; compose and store it first if needed.

    An issue with no entries is not composed or sent unless email.send_empty.
    `dry_run` writes one .eml per recipient into `outbox` (default
    <output>/outbox) and records nothing. Running it again resumes.
    """
    headers = list_headers(config)
    sync_subscribers(config, store, now)
    current = issues.issue_key(now, config.site.tz)
    key = issue_key or current
    if not issues.valid_key(key):
        raise DeliveryError(f"not an issue key: {key!r} (like {current})")
    issue = store.issue(key)
    composed = False
    if issue is None:
        if key != current:
            known = ", ".join(i.key for i in store.issues()[-5:]) or "none yet"
            raise DeliveryError(f"no issue {key} (stored issues: {known})")
        issue = compose_issue(config, store, now, key)
        if issue.entry_count == 0 and not config.email.send_empty:
            return SendReport(issue=None, empty=True, dry_run=dry_run)
        if not dry_run:
            issue, composed = store.add_issue(issue)
    if not dry_run:
        # the archive page, and the images of the formulas the email links
        files = {archive_path(key): issue.archive_html.encode("utf-8"), **issue_images(issue)}
        write_outputs(config.output.dir, files)
    recipients = store.subscribers(SubscriberStatus.ACTIVE)
    if dry_run:
        box = outbox or config.output.dir / "outbox"
        sent_before = {
            sid for sid, d in store.deliveries(key).items() if d.status is DeliveryStatus.SENT
        }
        todo = [s for s in recipients if s.id not in sent_before]
        written = smtp.write_outbox(box, issue, todo, headers, now)
        return SendReport(
            issue=key, sent=len(written), already=len(recipients) - len(todo), dry_run=True,
            written=tuple(written), composed=composed,
        )  # fmt: skip
    if resend_uncertain:
        store.reset_uncertain(key, now)
    sender = smtp.Sender(
        store, settings.smtp_settings(config, tls_context), headers, progress=progress
    )
    out = sender.send(issue, recipients)
    return SendReport(
        issue=key, sent=len(out.sent), already=len(out.already), busy=len(out.busy),
        failures=tuple(out.failures), uncertain=tuple(out.uncertain), composed=composed,
    )  # fmt: skip


def describe_send(report: SendReport) -> str:
    """A one-line summary of a send, for the runs table, status and logs."""
    if report.empty:
        return "nothing new: not sent"
    text = f"issue {report.issue}: {report.sent} sent, {report.already} had it"
    if report.failures:
        text += f", {len(report.failures)} failed"
    if report.uncertain:
        text += f", {len(report.uncertain)} uncertain"
    return text
