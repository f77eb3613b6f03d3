"""The digest's entries as pages, each article once with its "also in" (site and email)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from aggregator.config import Config
from aggregator.digest import (
    DigestSettings,
    also_in_names,
    paginate,
)
from aggregator.model import (
    Page,
    StoredEntry,
)
from aggregator.store import Store


def _digest_settings(config: Config) -> DigestSettings:
    d = config.digest
    return DigestSettings(
        page_size=d.page_size,
        excerpt_length=d.excerpt_length,
        lead_count=d.lead_count,
        lead_excerpt_length=d.lead_excerpt_length,
        ellipsis=d.ellipsis,
    )


def _visible(
    config: Config, store: Store, now: datetime
) -> tuple[list[StoredEntry], dict[int, tuple[str, ...]]]:
    """The entries to show, newest first, each article once; and their "also in"."""
    visible = store.visible_entries(now, [s.key for s in config.sources])
    copies = store.duplicates_of([s.id for s in visible])
    also_in = {s.id: also_in_names(s, copies.get(s.id, [])) for s in visible}
    return visible, also_in


def digest_pages(config: Config, store: Store, now: datetime) -> list[Page]:
    """The digest as pages of entries, newest first, each article once."""
    visible, also_in = _visible(config, store, now)
    return paginate(visible, also_in, _digest_settings(config))


def _paginate(
    config: Config, store: Store, visible: Sequence[StoredEntry], page_size: int
) -> list[Page]:
    """Pages of `page_size` entries with their "also in" (the email's one page)."""
    copies = store.duplicates_of([s.id for s in visible])
    also_in = {s.id: also_in_names(s, copies.get(s.id, [])) for s in visible}
    return paginate(visible, also_in, replace(_digest_settings(config), page_size=page_size))
