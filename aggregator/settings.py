"""Config sections -> the settings each stage takes: the one seam between
config.toml and the stages.

Stages do not read Config: each takes a small frozen settings value of its
own, built here from the sections that shape it. A settings class never
carries a default for a value that config.toml sets (config.py holds the one
default), so the two cannot drift apart; fields with defaults are the
stage's own tuning, not configurable.
"""

from __future__ import annotations

import ssl
from datetime import timedelta

from aggregator.config import Config
from aggregator.dedupe import DedupeSettings
from aggregator.digest import DigestSettings
from aggregator.newsletter.smtp import SmtpSettings
from aggregator.sources.content import ContentSettings
from aggregator.sources.feed_entries import EntrySettings
from aggregator.sources.fetch import FetchSettings
from aggregator.sources.parse import ParseSettings
from aggregator.sources.schedule import ScheduleSettings


def content_settings(config: Config) -> ContentSettings:
    """The content directory scan: [content], with [site]'s URL, time zone and author."""
    c, site = config.content, config.site
    return ContentSettings(
        dir=c.dir, base_url=site.base_url, permalink=c.permalink, timezone=site.tz,
        author=site.author, encoding=c.encoding, max_size=c.max_size,
        code_placeholder=c.code_placeholder,
    )  # fmt: skip


def fetch_settings(config: Config) -> FetchSettings:
    """The [fetch] section as the fetcher's settings."""
    f = config.fetch
    return FetchSettings(
        concurrency=f.concurrency, per_host=f.per_host, connect_timeout=f.connect_timeout,
        read_timeout=f.read_timeout, total_timeout=f.total_timeout, max_bytes=f.max_bytes,
        allow_private_redirects=f.allow_private_redirects,
    )  # fmt: skip


def parse_settings(config: Config) -> ParseSettings:
    """The limits of parsing one feed, from [fetch]."""
    return ParseSettings(timeout=config.fetch.parse_timeout, max_entries=config.fetch.max_entries)


def schedule_settings(config: Config) -> ScheduleSettings:
    """The bounds of each feed's schedule and error backoff, from [fetch]."""
    f = config.fetch
    return ScheduleSettings(
        min_interval=timedelta(minutes=f.min_interval_minutes),
        max_interval=timedelta(minutes=f.max_interval_minutes),
        backoff_cap=timedelta(minutes=f.backoff_cap_minutes),
    )


def entry_settings(config: Config) -> EntrySettings:
    """How items become entries: [dedupe] tracking parameters, [content] code placeholder."""
    return EntrySettings(
        tracking_params=config.dedupe.tracking_params,
        code_placeholder=config.content.code_placeholder,
    )


def dedupe_settings(config: Config) -> DedupeSettings:
    """The dedupe stage's thresholds, from [dedupe]."""
    return DedupeSettings(
        near_threshold=config.dedupe.near_threshold,
        near_min_words=config.dedupe.near_min_words,
    )


def digest_settings(config: Config) -> DigestSettings:
    """Pages, excerpts and leads, from [digest]."""
    d = config.digest
    return DigestSettings(
        page_size=d.page_size, excerpt_length=d.excerpt_length, lead_count=d.lead_count,
        lead_excerpt_length=d.lead_excerpt_length, ellipsis=d.ellipsis,
    )  # fmt: skip


def smtp_settings(config: Config, tls_context: ssl.SSLContext | None = None) -> SmtpSettings:
    """The SMTP server and sending pace, from [email]; the password from its
    environment variable."""
    e = config.email
    return SmtpSettings(
        host=e.smtp_host, port=e.smtp_port, user=e.smtp_user, password=e.smtp_password(),
        starttls=e.starttls, implicit_tls=e.implicit_tls, timeout=e.timeout,
        rate_limit=e.rate_limit, retries=e.retries, retry_backoff=e.retry_backoff,
        tls_context=tls_context,
    )  # fmt: skip
