"""The one orchestrator: ingest(), build(), run().

Stages decide; this package moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on.

One module per stage group; callers use the names re-exported here
(`from aggregator import pipeline; pipeline.ingest(...)`):

- ingestion: ingest(), the content directory and the feeds (fetch, parse in
  worker processes, store in batches), feed management (find_feed, read_opml,
  export_opml);
- deduplication: incremental and whole-store dedupe, split_duplicate;
- paging: the digest's entries as pages (shared by the site and the email);
- outputs: render_site() and build();
- mailing: the email digest (compose, subscribers, send, preview, unsubscribe).

The tuning constants (STORE_BATCH, POOL_MIN_FEEDS, DEDUPE_BATCH,
WHOLE_STORE_SHARE, WHOLE_STORE_MIN) are read where they are defined, so a
test that changes one patches that module (`pipeline.ingestion.STORE_BATCH`);
they are not re-exported here, where patching would silently do nothing.
"""

from __future__ import annotations

from aggregator.pipeline.deduplication import (
    dedupe_all,
    dedupe_changed,
    dedupe_full,
    dedupe_incremental,
    dedupe_settings,
    split_duplicate,
)
from aggregator.pipeline.ingestion import (
    Progress,
    entry_settings,
    export_opml,
    fetch_settings,
    find_feed,
    ingest,
    read_opml,
)
from aggregator.pipeline.mailing import (
    add_subscriber,
    archive_path,
    compose_issue,
    list_headers,
    new_token,
    next_issue,
    preview,
    remove_subscriber,
    send,
    smtp_settings,
    sync_subscribers,
    unsubscribe,
    unsubscribe_base,
)
from aggregator.pipeline.outputs import build, render_site
from aggregator.pipeline.paging import digest_pages

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
