"""The email digest: compose issues, keep subscribers, send, preview, unsubscribe."""

from __future__ import annotations

import secrets
import ssl
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aggregator import issues
from aggregator.config import Config
from aggregator.deliver import message, smtp
from aggregator.deliver.files import write_outputs
from aggregator.errors import DeliveryError
from aggregator.model import (
    UNSUBSCRIBE_PLACEHOLDER,
    DeliveryStatus,
    DigestEntry,
    Issue,
    SendReport,
    Subscriber,
    SubscriberStatus,
)
from aggregator.pipeline.paging import _paginate
from aggregator.render.email import render_archive, render_email
from aggregator.store import Store

# -- the email digest (issue 7) -----------------------------------------------


def archive_path(key: str) -> str:
    """Where an issue's web archive page is written, relative to the output dir."""
    return f"issues/{key}.html"


def _archive_pages(store: Store) -> dict[str, bytes]:
    return {archive_path(i.key): i.archive_html.encode("utf-8") for i in store.issues()}


def _email_preview(config: Config, store: Store, now: datetime) -> dict[str, bytes]:
    """public/email.html and email.txt: the next issue, as it would be sent now."""
    issue = next_issue(config, store, now)
    return {
        "email.html": message.personalize(issue.html, "preview").encode("utf-8"),
        "email.txt": message.personalize(issue.text, "preview").encode("utf-8"),
    }


def unsubscribe_base(config: Config) -> str:
    """The one-click unsubscribe URL without its token: [email] unsubscribe_url,
    default <base_url>unsubscribe/. The daemon's web endpoint serves
    POST (RFC 8058 one-click) and GET (a confirmation page) at base + token."""
    return config.email.unsubscribe_url or config.site.url("unsubscribe/")


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


def _issue_entries(
    config: Config, store: Store, now: datetime, previous_cutoff: datetime | None
) -> list[DigestEntry]:
    visible = store.visible_entries(now, [s.key for s in config.sources])
    max_age = timedelta(days=config.email.max_age_days)
    chosen = issues.window(visible, previous_cutoff, now, max_age)
    return list(_paginate(config, store, chosen, max(1, len(chosen)))[0].entries)


def compose_issue(config: Config, store: Store, now: datetime, key: str | None = None) -> Issue:
    """The issue cut at `now`: entries first seen since the latest stored issue's
    cut-off, rendered and sized to fit. Not stored: `send` stores it."""
    key = key or issues.issue_key(now, config.site.tz)
    previous = store.latest_issue()
    entries = _issue_entries(config, store, now, previous.cutoff if previous else None)
    return _render_issue(config, key, entries, now)


def next_issue(config: Config, store: Store, now: datetime) -> Issue:
    """The issue the next `send` would compose (for previews)."""
    key = issues.issue_key(now, config.site.tz)
    if store.issue(key) is not None:  # this week's is out; the next is next week's
        key = issues.issue_key(now + timedelta(days=7), config.site.tz)
    return compose_issue(config, store, now, key)


def _render_issue(config: Config, key: str, entries: list[DigestEntry], now: datetime) -> Issue:
    site = config.site
    web_url = site.url(archive_path(key))
    # The placeholder is as long as a real token, so the size measured is the size sent.
    unsubscribe = message.placeholder_url(unsubscribe_base(config))
    rendered: dict[int, tuple[str, str]] = {}

    def render(n: int) -> tuple[str, str]:
        if n not in rendered:
            body = render_email(
                entries[:n], site, web_url, issue_key=key, total=len(entries),
                unsubscribe_url=unsubscribe,
            )  # fmt: skip
            rendered[n] = (body.html, body.text)
        return rendered[n]

    limit = config.email.max_html_kb * 1024
    shown = issues.fit(len(entries), lambda n: message.encoded_html_size(render(n)[0]), limit)
    html, text = render(shown)
    return Issue(
        key=key,
        cutoff=now,
        subject=issues.subject(
            config.email.subject, title=site.title, count=len(entries), issue=key
        ),
        html=html,
        text=text,
        archive_html=render_archive(entries, site, web_url, issue_key=key),
        entry_count=len(entries),
        shown_count=shown,
        created=now,
    )


def new_token() -> str:
    """An unsubscribe token: 192 random bits, URL-safe, 32 characters."""
    token = secrets.token_urlsafe(24)
    assert len(token) == len(UNSUBSCRIBE_PLACEHOLDER)  # keeps size measuring exact
    return token


def sync_subscribers(config: Config, store: Store, now: datetime) -> None:
    """Bring config.toml's [[subscribers]] into the database (see Store.sync_subscribers)."""
    listed = [(s.email, s.name) for s in config.subscribers]
    store.sync_subscribers(
        [(message.normalize_address(email), name) for email, name in listed], new_token, now
    )


def add_subscriber(
    config: Config, store: Store, email: str, name: str, now: datetime
) -> Subscriber:
    """Add (or reactivate) a subscriber; DeliveryError for an invalid address."""
    sync_subscribers(config, store, now)
    return store.add_subscriber(message.normalize_address(email), name, new_token(), now)


def remove_subscriber(config: Config, store: Store, email: str, now: datetime) -> Subscriber | None:
    """Mark a subscriber unsubscribed by the admin; None if unknown. Rows stay for history."""
    sync_subscribers(config, store, now)
    sub = store.subscriber_by_email(email.strip())
    if sub is None:
        return None
    return store.set_subscriber_status(
        sub.id, SubscriberStatus.UNSUBSCRIBED, "removed by admin", now
    )


def unsubscribe(config: Config, store: Store, token: str, now: datetime) -> Subscriber | None:
    """Unsubscribe the holder of `token` (idempotent); None for an unknown token.

    What the daemon's one-click POST (RFC 8058) and the admin command call.
    """
    sub = store.subscriber_by_token(token.strip())
    if sub is None:
        return None
    return store.set_subscriber_status(
        sub.id, SubscriberStatus.UNSUBSCRIBED, "unsubscribe link", now
    )


def smtp_settings(config: Config, tls_context: ssl.SSLContext | None = None) -> smtp.SmtpSettings:
    e = config.email
    return smtp.SmtpSettings(
        host=e.smtp_host, port=e.smtp_port, user=e.smtp_user, password=e.smtp_password(),
        starttls=e.starttls, implicit_tls=e.implicit_tls, timeout=e.timeout,
        rate_limit=e.rate_limit, retries=e.retries, retry_backoff=e.retry_backoff,
        tls_context=tls_context,
    )  # fmt: skip


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
        write_outputs(config.output.dir, {archive_path(key): issue.archive_html.encode("utf-8")})
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
    sender = smtp.Sender(store, smtp_settings(config, tls_context), headers, progress=progress)
    out = sender.send(issue, recipients)
    return SendReport(
        issue=key, sent=len(out.sent), already=len(out.already), busy=len(out.busy),
        failures=tuple(out.failures), uncertain=tuple(out.uncertain), composed=composed,
    )  # fmt: skip


def preview(
    config: Config, store: Store, now: datetime, issue_key: str | None = None
) -> list[Path]:
    """Write an issue's email HTML and text into the output directory; return the paths.

    Without a key: the next issue (public/email.html, email.txt, as build does).
    With a key: that stored issue, as sent (email-<key>.html, email-<key>.txt).
    """
    if issue_key is None:
        files = _email_preview(config, store, now)
    else:
        issue = store.issue(issue_key)
        if issue is None:
            raise DeliveryError(f"no issue {issue_key} in the database")
        files = {
            f"email-{issue_key}.html": message.personalize(issue.html, "preview").encode("utf-8"),
            f"email-{issue_key}.txt": message.personalize(issue.text, "preview").encode("utf-8"),
        }
    write_outputs(config.output.dir, files)
    return [config.output.dir / name for name in sorted(files)]
