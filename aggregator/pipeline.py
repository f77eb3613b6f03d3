"""The one orchestrator: ingest(), build(), run().

Stages decide; this module moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on.
"""

from __future__ import annotations

import logging
import secrets
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aggregator import dedupe, issues
from aggregator.config import Config
from aggregator.deliver import message, smtp
from aggregator.deliver.files import write_outputs
from aggregator.digest import DigestSettings, also_in_names, paginate
from aggregator.errors import AggregatorError, DeliveryError, NormalizeError, SourceError
from aggregator.model import (
    UNSUBSCRIBE_PLACEHOLDER,
    BuildReport,
    DeliveryStatus,
    DigestEntry,
    Entry,
    Failure,
    IngestReport,
    Issue,
    Page,
    RawItem,
    SendReport,
    Source,
    SourceResult,
    StoredEntry,
    Subscriber,
    SubscriberStatus,
)
from aggregator.normalize import normalize
from aggregator.render.atom import render_feed
from aggregator.render.email import render_archive, render_email
from aggregator.render.pages import render_pages
from aggregator.sources import content, feeds
from aggregator.store import Store

log = logging.getLogger(__name__)


def ingest(config: Config, store: Store, now: datetime) -> IngestReport:
    """Read every source into the store, then dedupe."""
    results = [_ingest_content(config, store, now)]
    results += [_ingest_feed(source, store, now) for source in config.feed_sources]
    links = dedupe.cluster(store.dedupe_candidates())
    store.replace_dupe_links(links)
    return IngestReport(results=tuple(results), linked=len(links))


def _content_settings(config: Config) -> content.ContentSettings:
    return content.ContentSettings(
        dir=config.content.dir,
        base_url=config.site.base_url,
        permalink=config.content.permalink,
        timezone=config.site.tz,
        author=config.site.author,
    )


def _ingest_content(config: Config, store: Store, now: datetime) -> SourceResult:
    source = config.content_source
    source_id = store.ensure_source(source)
    scan = content.scan(_content_settings(config))
    published = [i for i in scan.items if not i.draft]
    batch, failures = _normalize_all(published, source, config.site.base_url, now)
    failures = list(scan.failures) + failures
    result = store.upsert_entries(source_id, batch, now)
    # A post deleted (or turned into a draft) leaves the digest; its row stays.
    # While any post is unreadable we cannot tell which entry it was, so
    # nothing is marked gone: a broken file must not hide its last good version.
    if not failures:
        store.mark_gone(source_id, {e.guid for e in batch})
    store.record_check(source_id, now, _summary(failures))
    return SourceResult(
        source=source,
        items=len(batch),
        new=result.new,
        changed=result.changed,
        failures=tuple(failures),
    )


def _ingest_feed(source: Source, store: Store, now: datetime) -> SourceResult:
    source_id = store.ensure_source(source)
    try:
        parsed = feeds.parse(feeds.fetch(source.key))
    except SourceError as e:
        failure = Failure(e.location, e.reason)
        store.record_check(source_id, now, str(failure))
        return SourceResult(source=source, failures=(failure,))
    if parsed.warning:
        log.warning("%s: %s", source.key, parsed.warning)
    items = [
        RawItem(**{**i.__dict__, "tags": (*i.tags, *source.tags)}) if source.tags else i
        for i in parsed.items
    ]
    batch, failures = _normalize_all(items, source, source.key, now)
    result = store.upsert_entries(source_id, batch, now)
    store.record_check(source_id, now, _summary(failures))
    return SourceResult(
        source=source,
        items=len(batch),
        new=result.new,
        changed=result.changed,
        failures=tuple(failures),
    )


def _normalize_all(
    items: list[RawItem], source: Source, base_url: str, now: datetime
) -> tuple[list[Entry], list[Failure]]:
    batch: list[Entry] = []
    failures: list[Failure] = []
    for item in items:
        try:
            batch.append(normalize(item, base_url, now))
        except NormalizeError as e:
            failures.append(Failure(item.location, str(e)))
    return batch, failures


def _summary(failures: list[Failure]) -> str | None:
    if not failures:
        return None
    first = str(failures[0])
    return first if len(failures) == 1 else f"{first} (and {len(failures) - 1} more)"


def digest_pages(config: Config, store: Store, now: datetime) -> list[Page]:
    """The digest as pages of entries, newest first, each article once."""
    visible = store.visible_entries(now, [s.key for s in config.sources])
    return _paginate(config, store, visible, config.digest.page_size)


def _paginate(
    config: Config, store: Store, visible: Sequence[StoredEntry], page_size: int
) -> list[Page]:
    copies = store.duplicates_of([s.id for s in visible])
    also_in = {s.id: also_in_names(s, copies.get(s.id, [])) for s in visible}
    d = config.digest
    settings = DigestSettings(
        page_size=page_size,
        excerpt_length=d.excerpt_length,
        lead_count=d.lead_count,
        lead_excerpt_length=d.lead_excerpt_length,
        ellipsis=d.ellipsis,
    )
    return paginate(visible, also_in, settings)


def build(config: Config, store: Store, now: datetime) -> BuildReport:
    """Render every output from the store and write it atomically."""
    pages = digest_pages(config, store, now)
    site = config.site
    outputs = _merge(
        render_feed(pages, site, now),
        render_pages(pages, site),
        _email_preview(config, store, now),
        _archive_pages(store),
    )
    written = write_outputs(config.output.dir, outputs)
    return BuildReport(written=tuple(written))


def _merge(*parts: Mapping[str, bytes]) -> dict[str, bytes]:
    """Join renderers' outputs; two renderers claiming one path is a bug."""
    merged: dict[str, bytes] = {}
    for part in parts:
        for path, data in part.items():
            if path in merged:
                raise AggregatorError(f"two outputs claim the same path: {path}")
            merged[path] = data
    return merged


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
