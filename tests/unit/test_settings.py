"""aggregator/settings.py, the one seam between config.toml and the stages.

Each row of LINKS is one stage setting and the config key it comes from. With
every section empty, a setting must equal the key's default in config.py (the
one default: settings classes carry none of their own for configured
values); a value written in config.toml must reach the setting.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from aggregator import settings
from aggregator.config import Config, load
from aggregator.dedupe import DedupeSettings
from aggregator.newsletter.smtp import SmtpSettings
from aggregator.sources.fetch import FetchSettings

SECTIONS = ("site", "content", "database", "output", "digest", "email", "fetch", "dedupe", "daemon")
PASSWORD_ENV = "AGGREGATOR_TEST_SMTP_PASSWORD"
PASSWORD = "s3cret"

#: config value -> the stage's value; `base` is the config file's directory
Convert = Callable[[Any, Path], Any]


def same(value: Any, base: Path) -> Any:
    return value


def minutes(value: Any, base: Path) -> Any:
    return timedelta(minutes=value)


def under_base(value: Any, base: Path) -> Any:
    """A relative path in config.toml is relative to the file."""
    return base / value


def zone(value: Any, base: Path) -> Any:
    return ZoneInfo(value)


def as_tuple(value: Any, base: Path) -> Any:
    return tuple(value)


def password(value: Any, base: Path) -> Any:
    """The password is read from the environment variable config.toml names."""
    return PASSWORD if value == PASSWORD_ENV else None


@dataclass(frozen=True)
class Link:
    """One stage setting and the config.toml key that sets it."""

    adapter: Callable[[Config], Any]
    field: str  #: of the stage's settings
    section: str  #: config.toml table
    key: str  #: its key
    value: Any  #: a value other than the default, written to config.toml
    convert: Convert = same

    @property
    def id(self) -> str:
        return f"{self.adapter.__name__}.{self.field}"

    def default(self) -> Any:
        """The key's one default, as config.py declares it."""
        section = typing.get_type_hints(Config)[self.section]
        (f,) = (f for f in fields(section) if f.metadata.get("key", f.name) == self.key)
        assert f.default is not MISSING, f"{self.section}.{self.key} has no default"
        return f.default


s = settings
LINKS = [
    # [content] and [site] -> the content scan
    Link(s.content_settings, "dir", "content", "dir", "posts", under_base),
    Link(s.content_settings, "permalink", "content", "permalink", "/p/{slug}.html"),
    Link(s.content_settings, "encoding", "content", "encoding", "gb18030"),
    Link(s.content_settings, "max_size", "content", "max_size", 4096),
    Link(s.content_settings, "code_placeholder", "content", "code_placeholder", "[snip]"),
    Link(s.content_settings, "base_url", "site", "base_url", "https://blog.example.org/"),
    Link(s.content_settings, "timezone", "site", "timezone", "Asia/Shanghai", zone),
    Link(s.content_settings, "author", "site", "author", "Me"),
    # [fetch] -> fetching, parsing, scheduling
    Link(s.fetch_settings, "concurrency", "fetch", "concurrency", 7),
    Link(s.fetch_settings, "per_host", "fetch", "per_host", 2),
    Link(s.fetch_settings, "connect_timeout", "fetch", "connect_timeout", 3.5),
    Link(s.fetch_settings, "read_timeout", "fetch", "read_timeout", 4.5),
    Link(s.fetch_settings, "total_timeout", "fetch", "total_timeout", 9.5),
    Link(s.fetch_settings, "max_bytes", "fetch", "max_bytes", 4096),
    Link(s.fetch_settings, "allow_private_redirects", "fetch", "allow_private_redirects", True),
    Link(s.parse_settings, "timeout", "fetch", "parse_timeout", 7.5),
    Link(s.parse_settings, "max_entries", "fetch", "max_entries", 40),
    Link(s.schedule_settings, "min_interval", "fetch", "min_interval_minutes", 45.0, minutes),
    Link(s.schedule_settings, "max_interval", "fetch", "max_interval_minutes", 2000.0, minutes),
    Link(s.schedule_settings, "backoff_cap", "fetch", "backoff_cap_minutes", 99.0, minutes),
    # [dedupe] and [content] -> items into entries
    Link(s.entry_settings, "tracking_params", "dedupe", "tracking_params", ["source"], as_tuple),
    Link(s.entry_settings, "code_placeholder", "content", "code_placeholder", "[snip]"),
    # [dedupe] -> dedupe
    Link(s.dedupe_settings, "near_threshold", "dedupe", "near_threshold", 0.9),
    Link(s.dedupe_settings, "near_min_words", "dedupe", "near_min_words", 80),
    # [digest] -> pages and excerpts
    Link(s.digest_settings, "page_size", "digest", "page_size", 7),
    Link(s.digest_settings, "excerpt_length", "digest", "excerpt_length", 99),
    Link(s.digest_settings, "lead_count", "digest", "lead_count", 2),
    Link(s.digest_settings, "lead_excerpt_length", "digest", "lead_excerpt_length", 300),
    Link(s.digest_settings, "ellipsis", "digest", "ellipsis", "…"),
    # [email] -> the SMTP sender
    Link(s.smtp_settings, "host", "email", "smtp_host", "mail.example.org"),
    Link(s.smtp_settings, "port", "email", "smtp_port", 587),
    Link(s.smtp_settings, "user", "email", "smtp_user", "me"),
    Link(s.smtp_settings, "password", "email", "smtp_password_env", PASSWORD_ENV, password),
    Link(s.smtp_settings, "starttls", "email", "starttls", True),
    Link(s.smtp_settings, "implicit_tls", "email", "implicit_tls", True),
    Link(s.smtp_settings, "timeout", "email", "timeout", 12.5),
    Link(s.smtp_settings, "rate_limit", "email", "rate_limit", 2.5),
    Link(s.smtp_settings, "retries", "email", "retries", 5),
    Link(s.smtp_settings, "retry_backoff", "email", "retry_backoff", 0.5),
]

#: the settings fields that are a stage's own tuning, not in config.toml: only
#: these have defaults in the settings classes
OWN_TUNING: dict[type, set[str]] = {
    FetchSettings: {"max_redirects", "user_agent", "resolve"},
    DedupeSettings: {"max_replaced_words", "max_group"},
    SmtpSettings: {"tls_context"},
}

ADAPTERS = [
    fn
    for _, fn in inspect.getmembers(settings, inspect.isfunction)
    if fn.__module__ == settings.__name__
]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def empty_sections(tmp_path: Path) -> Config:
    """A config.toml whose every section is there, and empty."""
    return load(write(tmp_path, "".join(f"[{name}]\n" for name in SECTIONS)))


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda fn: fn.__name__)
def test_every_configured_field_has_a_row_and_only_own_tuning_has_defaults(
    adapter: Callable[[Config], Any],
) -> None:
    cls = typing.get_type_hints(adapter)["return"]
    required = {f.name for f in fields(cls) if f.default is MISSING}
    defaulted = {f.name for f in fields(cls) if f.default is not MISSING}
    assert required == {link.field for link in LINKS if link.adapter is adapter}
    assert defaulted == OWN_TUNING.get(cls, set())
    assert not {f.name for f in fields(cls) if f.default_factory is not MISSING}


@pytest.mark.parametrize("link", LINKS, ids=lambda link: link.id)
def test_an_empty_section_gives_config_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: Link
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    got = getattr(link.adapter(empty_sections(tmp_path)), link.field)
    assert got == link.convert(link.default(), tmp_path)


@pytest.mark.parametrize("link", LINKS, ids=lambda link: link.id)
def test_a_value_in_config_toml_reaches_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, link: Link
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    assert link.value != link.default()
    config = load(write(tmp_path, f"[{link.section}]\n{link.key} = {json.dumps(link.value)}\n"))
    got = getattr(link.adapter(config), link.field)
    assert got == link.convert(link.value, tmp_path)
    assert got != link.convert(link.default(), tmp_path)


def test_the_documented_email_defaults_reach_the_sender(tmp_path: Path) -> None:
    """The drift this seam closes: SmtpSettings once said 0.0 where config says 5.0."""
    smtp = settings.smtp_settings(empty_sections(tmp_path))
    assert (smtp.rate_limit, smtp.retries, smtp.retry_backoff, smtp.timeout) == (5.0, 3, 2.0, 30.0)
    assert (smtp.host, smtp.port, smtp.password, smtp.tls_context) == ("localhost", 25, None, None)
