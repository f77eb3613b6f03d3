"""Schema migrations (alembic), applied by `Store.open` before anything else.

`upgrade(engine)` brings any database to the newest revision: a fresh one is
created from the revisions in `versions/`, an older one is upgraded, and one
made before migrations existed (by `metadata.create_all`, no alembic_version
table) is adopted: stamped at the initial revision if it has that revision's
whole schema, then upgraded. No alembic.ini is involved: the configuration is
built here, and alembic runs on a connection this module opens and locks so
that two processes (the daemon and a cron run) opening a fresh database at
once take turns instead of both creating the tables.

`python -m aggregator.store.migrations "what changed"` writes a new revision
by comparing store.schema.metadata with a scratch database at the newest
revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, String, Table, create_engine, inspect, select, text
from sqlalchemy.engine import Connection

from aggregator.errors import StoreError
from aggregator.store.schema import SCHEDULER_TABLE

HERE = Path(__file__).resolve().parent
#: the revision that creates the schema as it was before migrations existed
INITIAL = "0001"
#: tables alembic must neither create nor compare: APScheduler makes its own
FOREIGN_TABLES = frozenset({SCHEDULER_TABLE})
#: pg_advisory_xact_lock key held while migrating ("aggr" in ASCII)
_PG_LOCK_KEY = 0x61676772

_version_table = Table(
    "alembic_version", MetaData(), Column("version_num", String(32), primary_key=True)
)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's filter: leave other programs' tables alone."""
    return not (type_ == "table" and name in FOREIGN_TABLES)


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration, built in code; `connection` is what env.py runs on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    # new revisions are named 0002_what_changed.py (see __main__.py)
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


def heads() -> tuple[str, ...]:
    """The newest revision(s) in versions/ (one, unless someone branched)."""
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current(conn: Connection) -> tuple[str, ...]:
    """The revision(s) the database is at; () for a fresh or pre-migration database."""
    if not inspect(conn).has_table(_version_table.name):
        return ()
    return tuple(sorted(conn.execute(select(_version_table.c.version_num)).scalars()))


def upgrade(engine: Engine, where: str) -> None:
    """Bring the database to the newest revision; `where` names it in errors."""
    script = ScriptDirectory.from_config(alembic_config())
    head = tuple(sorted(script.get_heads()))
    with engine.connect() as conn:
        if current(conn) == head:  # the usual case: nothing to do, no lock taken
            return
    with _locked(engine) as conn:
        # Read again under the lock: another process may have just done it.
        at = current(conn)
        if at == head:
            return
        unknown = [r for r in at if not _known(script, r)]
        if unknown:
            raise StoreError(
                f"database {where} is at schema revision {', '.join(unknown)}, which this"
                " version of aggregator does not know: it was upgraded by a newer aggregator"
            )
        cfg = alembic_config(conn)
        if not at:
            _adopt_pre_migration(conn, cfg, where)
        command.upgrade(cfg, "head")


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown id
        return False


def _adopt_pre_migration(conn: Connection, cfg: Config, where: str) -> None:
    """A database made by `metadata.create_all` (before migrations): stamp it at
    INITIAL if it has that revision's whole schema; refuse a partial one."""
    expected = initial_schema()
    found = inspect(conn)
    present = {t for t in expected if found.has_table(t)}
    if not present:
        return  # a fresh database: the revisions create everything
    missing = [t for t in sorted(expected) if t not in present]
    for table in sorted(present):
        columns = {c["name"] for c in found.get_columns(table)}
        missing += [f"{table}.{c}" for c in sorted(expected[table] - columns)]
    if missing:
        raise StoreError(
            f"database {where} was made by an aggregator older than its schema migrations"
            f" and lacks {', '.join(missing)}: move it aside and run `aggregator ingest`"
            " to build a new one"
        )
    command.stamp(cfg, INITIAL)


def initial_schema() -> dict[str, set[str]]:
    """Table -> column names of the INITIAL revision, read from a scratch database."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.begin() as conn:
            command.upgrade(alembic_config(conn), INITIAL)
            found = inspect(conn)
            return {
                t: {c["name"] for c in found.get_columns(t)}
                for t in found.get_table_names()
                if t != _version_table.name
            }
    finally:
        scratch.dispose()


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that only one process at a time can hold.

    SQLite: BEGIN IMMEDIATE takes the write lock up front (a second process
    waits for it: busy_timeout), and SQLite's DDL is transactional, so the
    second one then sees the finished tables. PostgreSQL: a transaction-scoped
    advisory lock, released by the COMMIT.
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            yield conn
            conn.commit()
            return
        # A batch migration on SQLite copies a table and drops the old one; with
        # foreign keys enforced the drop fails while rows refer to it, and the
        # pragma cannot change inside a transaction. So: off while migrating,
        # every reference checked before the commit, on again afterwards.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            # pysqlite emits no BEGIN of its own before DDL: issue ours.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise StoreError(f"a schema migration broke foreign keys: {broken[:5]}")
            conn.commit()
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
