"""The store: the database, through SQLAlchemy Core, as one `Store`.

The only package that writes SQL. Rows go in and come out as model values;
no session or row object leaves it. Portable between SQLite (the default,
WAL mode) and PostgreSQL: no SQLite-only SQL outside a dialect check.

One module per aggregate (sources, entries, dedupe, newsletter, runs,
housekeeping), each a mixin on StoreBase (base.py: the engine, its
transactions and the shared helpers); schema.py holds every table, and
migrations/ their history (alembic), applied by `Store.open`.

Mixins, not one repository object per aggregate sharing an engine (as
lemon24/reader's Storage is FeedsMixin, EntriesMixin, TagsMixin over a
StorageBase): every caller keeps its one handle and calls `store.method(...)`
as before, nothing is wired up per aggregate, and each aggregate still lives,
and is read, in a module of its own. The aggregates do not call each other's
methods; the few row helpers two of them share are module functions
(entries._stored, sources._put_feed_meta).
"""

from __future__ import annotations

from aggregator.store.base import default_sqlite_parent
from aggregator.store.dedupe import DedupeMixin
from aggregator.store.entries import EntriesMixin, UpsertResult
from aggregator.store.housekeeping import HousekeepingMixin
from aggregator.store.newsletter import NewsletterMixin
from aggregator.store.runs import RunsMixin
from aggregator.store.schema import SCHEDULER_TABLE, metadata
from aggregator.store.sources import SourcesMixin

__all__ = ["SCHEDULER_TABLE", "Store", "UpsertResult", "default_sqlite_parent", "metadata"]


class Store(SourcesMixin, EntriesMixin, DedupeMixin, NewsletterMixin, RunsMixin, HousekeepingMixin):
    """A handle on the database. Create with `Store.open(url)`."""
