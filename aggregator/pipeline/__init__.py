"""The one orchestrator: ingest(), build(), run().

Stages decide; this package moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on.

Callers use the names re-exported here (`from aggregator import pipeline;
pipeline.ingest(...)`). The code is still in one module, pipeline/ingestion.py
(moved here unchanged from pipeline.py); the next commit splits it by stage group.
"""

from __future__ import annotations

from aggregator.pipeline.ingestion import (
    Progress,
    add_subscriber,
    archive_path,
    build,
    compose_issue,
    dedupe_all,
    dedupe_changed,
    dedupe_full,
    dedupe_incremental,
    dedupe_settings,
    digest_pages,
    entry_settings,
    export_opml,
    fetch_settings,
    find_feed,
    ingest,
    list_headers,
    new_token,
    next_issue,
    preview,
    read_opml,
    remove_subscriber,
    render_site,
    send,
    smtp_settings,
    split_duplicate,
    sync_subscribers,
    unsubscribe,
    unsubscribe_base,
)

__all__ = [
    "Progress",
    "add_subscriber",
    "archive_path",
    "build",
    "compose_issue",
    "dedupe_all",
    "dedupe_changed",
    "dedupe_full",
    "dedupe_incremental",
    "dedupe_settings",
    "digest_pages",
    "entry_settings",
    "export_opml",
    "fetch_settings",
    "find_feed",
    "ingest",
    "list_headers",
    "new_token",
    "next_issue",
    "preview",
    "read_opml",
    "remove_subscriber",
    "render_site",
    "send",
    "smtp_settings",
    "split_duplicate",
    "sync_subscribers",
    "unsubscribe",
    "unsubscribe_base",
]
