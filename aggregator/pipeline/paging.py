"""The digest's entries as pages, each article once with its "also in" (site and email)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from aggregator import settings
from aggregator.config import Config
from aggregator.digest import also_in_names, paginate
from aggregator.model import Page, StoredEntry
from aggregator.store import Store


def visible(
    config: Config, store: Store, now: datetime
) -> tuple[list[StoredEntry], dict[int, tuple[str, ...]]]:
    """The entries to show, newest first, each article once; and their "also in"."""
    shown = store.visible_entries(now, [s.key for s in config.sources])
    return shown, _also_in(store, shown)


def paginate_entries(
    config: Config, store: Store, entries: Sequence[StoredEntry], page_size: int
) -> list[Page]:
    """Pages of `page_size` entries with their "also in" (the email's one page)."""
    page_settings = replace(settings.digest_settings(config), page_size=page_size)
    return paginate(entries, _also_in(store, entries), page_settings)


def _also_in(store: Store, entries: Sequence[StoredEntry]) -> dict[int, tuple[str, ...]]:
    copies = store.duplicates_of([s.id for s in entries])
    return {s.id: also_in_names(s, copies.get(s.id, [])) for s in entries}
