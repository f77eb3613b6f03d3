"""What every aggregate of the store shares: the engine, opened and migrated
(`StoreBase.open`), its transactions (`_tx`), and the helpers for writing
portable SQL that stays fast (chunked IN lists, id ranges, driver-level
executemany, the dialect's INSERT ... ON CONFLICT).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from alembic.util import CommandError as AlembicError
from sqlalchemy import Engine, Table, create_engine, event, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from aggregator.errors import StoreError
from aggregator.store import migrations


def default_sqlite_parent(url: str) -> Path | None:
    """The directory a SQLite file URL needs, or None for other databases."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database).parent
    return None


class StoreBase:
    """A handle on the database: the engine and its transactions. The
    aggregates (store/sources.py, entries.py, ...) are mixins on this."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Self:
        """Open (and create if needed) the database at `url`."""
        try:
            parent = default_sqlite_parent(url)
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            elif engine.dialect.name == "postgresql":
                event.listen(engine, "before_cursor_execute", _drop_nul, retval=True)
            # Creates a fresh database, upgrades an older one (StoreError if it cannot).
            migrations.upgrade(engine, _safe(url))
        except (SQLAlchemyError, OSError, AlembicError) as e:
            raise StoreError(f"cannot open database {_safe(url)}: {e}") from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has on_conflict_do_nothing on sqlite and postgresql."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


#: ids per IN (...) list: well under every database's bound-parameter limit
_CHUNK = 500


def _chunks(values: Iterable[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    """`values` in lists of at most `size`, for IN (...) queries."""
    batch: list[Any] = []
    for v in values:
        batch.append(v)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


#: consecutive ids from which _id_filters uses one BETWEEN rather than listing them
_MIN_RUN = 16


def _id_filters(col: ColumnElement[int], ids: Iterable[int]) -> Iterator[ColumnElement[bool]]:
    """Conditions on `col` that together select exactly `ids`, one statement each.

    A run of consecutive ids (a first ingest's entries are one run) becomes
    one BETWEEN, the rest IN lists of at most _CHUNK: binding every value
    of big IN lists cost more than the queries themselves (17,000 new
    entries: about 35 statements of 500 values for each read or write).
    """
    values = sorted(set(ids))
    ranges: list[tuple[int, int]] = []
    singles: list[int] = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[i - 1] + 1:
            if i - start >= _MIN_RUN:
                ranges.append((values[start], values[i - 1]))
            else:
                singles.extend(values[start:i])
            start = i
    for rchunk in _chunks(ranges, _CHUNK // _MIN_RUN):
        yield or_(*(col.between(lo, hi) for lo, hi in rchunk))
    for chunk in _chunks(singles):
        yield col.in_(chunk)


def _driver_mark(conn: Connection) -> str | None:
    """The driver's positional placeholder ("?" or "%s") for SQL handed to it
    directly; None for a driver whose placeholders are named (use SQLAlchemy)."""
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    return "%s" if style in ("format", "pyformat") else None


def _insert_plain(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT `rows` (plain values needing no type conversion, in `columns`
    order) in one executemany handed straight to the driver: SQLAlchemy's
    per-row parameter processing took as long as the database's own insert
    (173,000 LSH keys after a first ingest)."""
    if not rows:
        return
    mark = _driver_mark(conn)
    if mark is None:
        conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    quote = conn.dialect.identifier_preparer
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)})"
        f" VALUES ({', '.join(mark for _ in columns)})"
    )
    conn.exec_driver_sql(sql, list(rows))


#: 0.05 s apart: about 10 s, as long as busy_timeout
_WAL_TRIES = 200


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # First: switching a fresh file to WAL needs a lock a second process may hold.
    cur.execute("PRAGMA busy_timeout=10000")
    # Switching a fresh file to WAL answers "database is locked" at once, without
    # waiting out busy_timeout, while another process is creating the schema:
    # so wait here, a bounded while (the daemon and a cron run starting together).
    for attempt in range(_WAL_TRIES):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(0.05)
    # WAL + NORMAL: still crash-safe, but a commit no longer waits for fsync
    # (ingesting 500 feeds commits at least once per feed).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _drop_nul(
    _conn: Connection,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    """PostgreSQL's text cannot hold NUL (SQLite's can): drop it from every
    string parameter rather than fail the write. A NUL in a feed's title or
    a subscriber's name means nothing a reader could see."""
    if executemany:
        return statement, [_no_nul(p) for p in parameters]
    return statement, _no_nul(parameters)


def _no_nul(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: _strip_nul(v) for k, v in params.items()}
    if isinstance(params, list | tuple):
        return type(params)(_strip_nul(v) for v in params)
    return params


def _strip_nul(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
