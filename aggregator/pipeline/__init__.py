"""The orchestrator of the digest: ingest() and build().

Stages decide; this package moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on. The
weekly email is a wing of its own (aggregator/newsletter); app.py is the
front door that calls both.

One module per stage group; callers use the names re-exported here
(`from aggregator import pipeline; pipeline.ingest(...)`):

- ingestion: ingest(), the content directory and the feeds (fetch, parse in
  worker processes, store in batches), feed management (find_feed, read_opml,
  export_opml);
- deduplication: incremental and whole-store dedupe, split_duplicate;
- paging: the digest's entries as pages with their "also in" (site and email);
- outputs: render_site() and build().

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
    split_duplicate,
)
from aggregator.pipeline.ingestion import Progress, export_opml, find_feed, ingest, read_opml
from aggregator.pipeline.outputs import build, render_site

__all__ = [
    "Progress",
    "build",
    "dedupe_all",
    "dedupe_changed",
    "dedupe_full",
    "dedupe_incremental",
    "export_opml",
    "find_feed",
    "ingest",
    "read_opml",
    "render_site",
    "split_duplicate",
]
