"""config.toml -> a frozen Config, validated once at start-up.

This package is the only place that knows config key names. Every section is
a frozen dataclass whose fields are the keys (sections.py); load.py checks
types, fills defaults and refuses unknown keys, so a typo never passes
silently, and resolves relative paths against the config file's folder;
checks.py checks every value. Callers import from here.
"""

from __future__ import annotations

from aggregator.config.load import default_config_path, feed_url, load, parse
from aggregator.config.schedule import Schedule, parse_schedule, schedule_error
from aggregator.config.sections import (
    CONTENT_SOURCE_KEY,
    ENV_CONFIG,
    FEEDS_KEY,
    Config,
    ContentConfig,
    DaemonConfig,
    DatabaseConfig,
    DedupeConfig,
    DigestConfig,
    EmailConfig,
    FeedConfig,
    FetchConfig,
    OutputConfig,
    SiteConfig,
    SubscriberConfig,
)

__all__ = [
    "CONTENT_SOURCE_KEY",
    "ENV_CONFIG",
    "FEEDS_KEY",
    "Config",
    "ContentConfig",
    "DaemonConfig",
    "DatabaseConfig",
    "DedupeConfig",
    "DigestConfig",
    "EmailConfig",
    "FeedConfig",
    "FetchConfig",
    "OutputConfig",
    "Schedule",
    "SiteConfig",
    "SubscriberConfig",
    "default_config_path",
    "feed_url",
    "load",
    "parse",
    "parse_schedule",
    "schedule_error",
]
