"""Keeping the database itself in shape: the planner's statistics, VACUUM,
and SQLite's integrity check (the daemon's housekeeping job)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StoreError
from aggregator.store.base import StoreBase


class HousekeepingMixin(StoreBase):
    """ANALYZE, VACUUM and the integrity check."""

    def optimize(self, *, vacuum: bool) -> None:
        """Refresh the planner's statistics (ANALYZE); VACUUM too if asked.

        VACUUM cannot run inside a transaction, so it gets an autocommit
        connection; on SQLite in WAL mode it also truncates the WAL file.
        """
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
                if vacuum:
                    conn.execute(text("VACUUM"))
                    if self.engine.dialect.name == "sqlite":
                        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        except SQLAlchemyError as e:
            raise StoreError(f"database maintenance failed: {e}") from e

    def integrity_check(self) -> str:
        """ "ok", or what SQLite's integrity check found (other databases: "ok")."""
        if self.engine.dialect.name != "sqlite":
            return "ok"
        with self._tx() as conn:
            rows = conn.execute(text("PRAGMA integrity_check")).scalars().all()
        return "; ".join(str(r) for r in rows)
