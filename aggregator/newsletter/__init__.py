"""The weekly email, as one wing.

- issues: an issue's key (ISO week), its window of entries, subject, fitting (pure);
- schedule: `[email] schedule` as an APScheduler trigger, and when it next fires;
- compose: the entries of an issue rendered and sized, its archive page, previews;
- subscribers: config.toml's list in the database, add, remove, unsubscribe;
- send: store the issue once, then send it to each subscriber exactly once;
- message: one subscriber's MIME message and its headers (pure);
- smtp: the SMTP transport and the exactly-once delivery ledger it keeps in the store.

Callers use the names re-exported here (`newsletter.send(...)`); the app
layer (app.py) records a send as a run, for cron and the daemon alike.
"""

from __future__ import annotations

from aggregator.newsletter.compose import (
    archive_pages,
    archive_path,
    compose_issue,
    next_issue,
    preview,
    preview_files,
    unsubscribe_base,
)
from aggregator.newsletter.send import describe_send, list_headers, send
from aggregator.newsletter.subscribers import (
    add_subscriber,
    all_subscribers,
    new_token,
    remove_subscriber,
    sync_subscribers,
    unsubscribe,
    unsubscribe_token_or_email,
)

__all__ = [
    "add_subscriber",
    "all_subscribers",
    "archive_pages",
    "archive_path",
    "compose_issue",
    "describe_send",
    "list_headers",
    "new_token",
    "next_issue",
    "preview",
    "preview_files",
    "remove_subscriber",
    "send",
    "sync_subscribers",
    "unsubscribe",
    "unsubscribe_base",
    "unsubscribe_token_or_email",
]
