"""The value checks of config.toml: ranges, names that must exist (time zone,
encoding), addresses that can receive mail. Each error names the file and the key."""

from __future__ import annotations

import codecs
import re
from zoneinfo import ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from aggregator.config.schedule import parse_schedule
from aggregator.config.sections import Config
from aggregator.errors import ConfigError


def check(config: Config) -> None:
    """Every value in range; ConfigError naming the file and the key otherwise."""
    path = config.path
    try:
        config.site.tz  # noqa: B018 - validates the name
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: 'site.timezone' is not a known time zone: {config.site.timezone!r}"
            " (use a name like 'Asia/Shanghai' or 'UTC')"
        ) from None
    if not config.site.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: 'site.base_url' must start with http:// or https://")
    c = config.content
    try:
        codecs.lookup(c.encoding)
    except LookupError:
        raise ConfigError(
            f"{path}: 'content.encoding' is not a known encoding: {c.encoding!r}"
            " (use e.g. 'utf-8' or 'gb18030')"
        ) from None
    if c.max_size <= 0:
        raise ConfigError(f"{path}: 'content.max_size' must be greater than 0, not {c.max_size}")
    if "{slug}" not in c.permalink:
        raise ConfigError(f"{path}: 'content.permalink' must contain {{slug}}: {c.permalink!r}")
    d = config.digest
    for key, v in (
        ("page_size", d.page_size),
        ("excerpt_length", d.excerpt_length),
        ("lead_excerpt_length", d.lead_excerpt_length),
    ):
        if v <= 0:
            raise ConfigError(f"{path}: 'digest.{key}' must be greater than 0, not {v}")
    if config.output.archive_size <= 0:
        raise ConfigError(
            f"{path}: 'output.archive_size' must be greater than 0,"
            f" not {config.output.archive_size}"
        )
    if d.lead_count < 0:
        raise ConfigError(f"{path}: 'digest.lead_count' must be 0 or more, not {d.lead_count}")
    _check_email(config)
    dd = config.dedupe
    if not 0.5 <= dd.near_threshold <= 1.0:
        raise ConfigError(
            f"{path}: 'dedupe.near_threshold' must be between 0.5 and 1.0, not {dd.near_threshold}"
        )
    if dd.near_min_words < 10:
        raise ConfigError(
            f"{path}: 'dedupe.near_min_words' must be 10 or more, not {dd.near_min_words}"
        )
    _check_daemon(config)
    _check_fetch(config)
    seen: set[str] = set()
    for feed in config.feeds:
        if feed.url in seen:
            raise ConfigError(f"{path}: feed {feed.url} is listed twice in [[feeds]]")
        seen.add(feed.url)
    _check_shown_text(config)


#: characters no page, feed or email can carry (controls; lone surrogates from a
#: TOML escape): a name holding one would make every entry it labels unwritable
_UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _check_shown_text(config: Config) -> None:
    """Names and words from config.toml that readers see hold no control character."""
    site, content = config.site, config.content
    shown = [
        ("site.title", site.title), ("site.subtitle", site.subtitle),
        ("site.author", site.author), ("content.name", content.name),
    ]  # fmt: skip
    for i, feed in enumerate(config.feeds):
        shown.append((f"feeds[{i}].name", feed.name))
        shown += [(f"feeds[{i}].tags", tag) for tag in feed.tags]
    for i, sub in enumerate(config.subscribers):
        shown.append((f"subscribers[{i}].name", sub.name))
    for key, value in shown:
        if _UNSHOWABLE.search(value):
            raise ConfigError(
                f"{config.path}: '{key}' holds a control character: {value!r}"
                " (readers would see it in pages, feeds and the email; remove it)"
            )


def _check_fetch(config: Config) -> None:
    f = config.fetch
    for key in (
        "concurrency", "per_host", "connect_timeout", "read_timeout", "total_timeout",
        "max_bytes", "max_entries", "parse_timeout", "min_interval_minutes",
        "max_interval_minutes", "backoff_cap_minutes",
    ):  # fmt: skip
        v = getattr(f, key)
        if v <= 0:
            raise ConfigError(f"{config.path}: 'fetch.{key}' must be greater than 0, not {v}")
    if f.parse_workers < 0:
        raise ConfigError(f"{config.path}: 'fetch.parse_workers' must be 0 or more")
    if f.max_interval_minutes < f.min_interval_minutes:
        raise ConfigError(
            f"{config.path}: 'fetch.max_interval_minutes' must not be less than"
            " 'fetch.min_interval_minutes'"
        )


def _check_email(config: Config) -> None:
    """[email] values in range and [[subscribers]] addresses that can receive mail."""
    path, e = config.path, config.email
    if e.starttls and e.implicit_tls:
        raise ConfigError(f"{path}: 'email.starttls' and 'email.implicit_tls' exclude each other")
    try:
        parse_schedule(e.schedule)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    _check_port(config, "email.smtp_port", e.smtp_port)
    if not e.smtp_host.strip() and config.subscribers:
        n = len(config.subscribers)
        raise ConfigError(
            f"{path}: 'email.smtp_host' is empty, but [[subscribers]] lists {n}"
            f" {'address' if n == 1 else 'addresses'} to send the email to"
            ' (name the SMTP server, e.g. "localhost" or "smtp.example.org")'
        )
    if any(c.isspace() for c in e.smtp_host):
        raise ConfigError(f"{path}: 'email.smtp_host' contains a space: {e.smtp_host!r}")
    for key, v in (("rate_limit", e.rate_limit), ("retry_backoff", e.retry_backoff)):
        if v < 0:
            raise ConfigError(f"{path}: 'email.{key}' must be 0 or more, not {v}")
    for key, n in (
        ("retries", e.retries),
        ("max_age_days", e.max_age_days),
        ("max_html_kb", e.max_html_kb),
    ):
        if n <= 0:
            raise ConfigError(f"{path}: 'email.{key}' must be greater than 0, not {n}")
    if e.timeout <= 0:
        raise ConfigError(f"{path}: 'email.timeout' must be greater than 0, not {e.timeout}")
    if e.unsubscribe_url and not e.unsubscribe_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: 'email.unsubscribe_url' must start with http:// or https://")
    seen: set[str] = set()
    for i, sub in enumerate(config.subscribers):
        try:
            address = validate_email(sub.email, check_deliverability=False).normalized
        except EmailNotValidError as err:
            raise ConfigError(
                f"{path}: 'subscribers[{i}].email' is not an email address: {sub.email!r} ({err})"
            ) from None
        if address.lower() in seen:
            raise ConfigError(f"{path}: subscriber {address} is listed twice in [[subscribers]]")
        seen.add(address.lower())


def _check_daemon(config: Config) -> None:
    path, d = config.path, config.daemon
    _check_port(config, "daemon.port", d.port)
    for key, v in (
        ("ingest_interval", d.ingest_interval),
        ("rebuild_interval", d.rebuild_interval),
        ("housekeeping_interval", d.housekeeping_interval),
        ("misfire_grace_time", d.misfire_grace_time),
        ("shutdown_timeout", d.shutdown_timeout),
        ("vacuum_interval_days", d.vacuum_interval_days),
        ("keep_runs_days", d.keep_runs_days),
    ):
        if v <= 0:
            raise ConfigError(f"{path}: 'daemon.{key}' must be greater than 0, not {v}")
    if d.send_interval < 0:
        raise ConfigError(
            f"{path}: 'daemon.send_interval' must be 0 (use email.schedule) or more, "
            f"not {d.send_interval}"
        )


def _check_port(config: Config, key: str, port: int) -> None:
    if not 0 < port < 65536:
        raise ConfigError(f"{config.path}: '{key}' must be between 1 and 65535, not {port}")
