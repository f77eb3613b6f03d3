"""Schema migrations: every database reaches the newest revision on Store.open.

Runs on SQLite files, or on PostgreSQL with $AGGREGATOR_TEST_DATABASE_URL.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Boolean, Column, Integer, MetaData, create_engine, inspect, select, text

from aggregator.errors import StoreError
from aggregator.model import SourceKind
from aggregator.store import SCHEDULER_TABLE, Store, default_sqlite_parent, migrations
from aggregator.store.entries import _entry_values
from aggregator.store.schema import entries, metadata, sources
from tests.databases import Databases
from tests.factories import T0, entry, source

ROOT = Path(__file__).resolve().parents[2]
HOW_TO = (
    "store.schema.metadata changed without a migration:"
    ' run python -m aggregator.store.migrations "..."'
)


def schema_diff(url: str, target: MetaData = metadata) -> list[Any]:
    """What alembic's autogenerate would write for the database at `url`."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"include_object": migrations.include_object, "compare_type": True}
            )
            return list(compare_metadata(ctx, target))
    finally:
        engine.dispose()


def revision_of(url: str) -> tuple[str, ...]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return migrations.current(conn)
    finally:
        engine.dispose()


def pre_migration_database(url: str) -> None:
    """A database as aggregator made it before migrations: the initial schema
    (what metadata.create_all made then) and no alembic_version table."""
    parent = default_sqlite_parent(url)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            command.upgrade(migrations.alembic_config(conn), migrations.INITIAL)
            conn.execute(text("DROP TABLE alembic_version"))
    finally:
        engine.dispose()


def test_a_fresh_database_gets_exactly_the_schema_of_store_metadata(database_url: str) -> None:
    """Fails when someone changes store.metadata without adding a revision."""
    Store.open(database_url).close()
    assert revision_of(database_url) == migrations.heads()
    assert schema_diff(database_url) == [], HOW_TO


def test_the_schema_check_notices_a_column_no_revision_adds(database_url: str) -> None:
    Store.open(database_url).close()
    changed = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["entries"].append_column(Column("guard_probe", Integer))
    diff = schema_diff(database_url, changed)
    assert [(d[0], d[3].name) for d in diff] == [("add_column", "guard_probe")]


def test_the_scheduler_table_is_left_to_apscheduler(database_url: str) -> None:
    Store.open(database_url).close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {SCHEDULER_TABLE} (id VARCHAR(191) PRIMARY KEY)"))
    engine.dispose()
    assert schema_diff(database_url) == []
    Store.open(database_url).close()  # and opening again neither drops nor trips on it
    engine = create_engine(database_url)
    assert inspect(engine).has_table(SCHEDULER_TABLE)
    engine.dispose()


def test_a_database_made_before_migrations_is_adopted_with_its_rows(database_url: str) -> None:
    pre_migration_database(database_url)
    assert revision_of(database_url) == ()
    # Rows as the old code wrote them: only the initial schema's columns (later
    # revisions add columns the old code never knew).
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(
            sources.insert().values(kind=str(SourceKind.FEED), key="https://old.example/feed",
                                    name="F", last_status="ok")
        )  # fmt: skip
        sid = conn.execute(select(sources.c.id)).scalar_one()
        initial = set(migrations.initial_schema()["entries"])
        values = {k: v for k, v in _entry_values(entry(guid="kept")).items() if k in initial}
        # entries.dedupe_dirty: the old code's flag, a queue of its own since
        old_entries = entries.to_metadata(MetaData())
        old_entries.append_column(Column("dedupe_dirty", Boolean, nullable=False))
        conn.execute(
            old_entries.insert().values(source_id=sid, first_seen=T0, dedupe_dirty=True, **values)
        )
    engine.dispose()

    store = Store.open(database_url)
    try:
        assert revision_of(database_url) == migrations.heads()
        assert [s.entry.guid for s in store.visible_entries(T0)] == ["kept"]
        assert len(store.dedupe_dirty_ids()) == 1  # dedupe will still look at it
        assert store.ensure_source(source(key="https://old.example/feed")) == sid
    finally:
        store.close()
    assert schema_diff(database_url) == []


def test_dirty_flags_become_the_dedupe_queue_and_back(database_url: str) -> None:
    """Revision 0003 moved entries.dedupe_dirty into a table of its own."""
    parent = default_sqlite_parent(database_url)
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0002")
        conn.execute(sources.insert().values(kind=str(SourceKind.FEED), key="f", name="F"))
        sid = conn.execute(select(sources.c.id)).scalar_one()
        old_entries = entries.to_metadata(MetaData())
        old_entries.append_column(Column("dedupe_dirty", Boolean, nullable=False))
        for n, dirty in enumerate((True, False, True)):
            values = _entry_values(entry(guid=f"p{n}"))
            conn.execute(
                old_entries.insert().values(source_id=sid, first_seen=T0, dedupe_dirty=dirty,
                                            **values)
            )  # fmt: skip
        flags = dict(conn.execute(select(old_entries.c.id, old_entries.c.dedupe_dirty)).all())
    engine.dispose()

    store = Store.open(database_url)
    try:
        assert store.dedupe_dirty_ids() == [i for i, dirty in sorted(flags.items()) if dirty]
        assert len(store.dedupe_candidates()) == 3
    finally:
        store.close()
    assert schema_diff(database_url) == []

    engine = create_engine(database_url)
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0002")
        columns = {c["name"] for c in inspect(conn).get_columns("entries")}
        assert "dedupe_dirty" in columns
        assert not inspect(conn).has_table("dedupe_queue")
        back: dict[int, Any] = dict(
            conn.execute(text("SELECT id, dedupe_dirty FROM entries")).all()
        )
    engine.dispose()
    assert {i: bool(v) for i, v in back.items()} == flags


def test_a_partial_old_database_is_refused_and_left_alone(database_url: str) -> None:
    pre_migration_database(database_url)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE runs"))
        conn.execute(sources.insert().values(kind=str(SourceKind.FEED), key="k", name="n"))
    with pytest.raises(StoreError, match=r"older than its schema migrations.* lacks runs"):
        Store.open(database_url)
    with engine.connect() as conn:  # nothing was created, stamped or lost
        assert conn.execute(select(sources.c.key)).scalars().all() == ["k"]
        assert not inspect(conn).has_table("alembic_version")
    engine.dispose()


def test_a_database_from_a_newer_aggregator_is_refused(database_url: str) -> None:
    Store.open(database_url).close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(StoreError, match="revision 9999, which this version of aggregator"):
        Store.open(database_url)


#: a child process: import everything, say so, wait for the go, then open the store
CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from aggregator.model import Source, SourceKind
    from aggregator.store import Store

    url, ready, go, key = sys.argv[1:]
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not Path(go).exists():
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.001)
    store = Store.open(url)
    store.ensure_source(Source(kind=SourceKind.FEED, key=key, name=key))
    store.close()
    """
)


def test_two_processes_opening_a_fresh_database_at_once_both_succeed(
    databases: Databases, tmp_path: Path
) -> None:
    """The daemon and a cron run starting together on a new database."""
    for round_ in range(3):
        url = databases.new(f"race{round_}")
        flags = tmp_path / f"round{round_}"
        flags.mkdir()
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, url, str(flags / f"ready{i}"), str(flags / "go"),
                 f"feed{i}"],
                cwd=ROOT, stderr=subprocess.PIPE, text=True,
            )
            for i in range(2)
        ]  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not all((flags / f"ready{i}").exists() for i in range(2)):
                assert time.monotonic() < deadline, "children did not start"
                assert all(c.poll() is None for c in children), "a child died early"
                time.sleep(0.01)
            (flags / "go").touch()
            results = [(c.wait(timeout=60), c.stderr.read() if c.stderr else "") for c in children]
        finally:
            for c in children:
                if c.poll() is None:
                    c.kill()
        assert [code for code, _ in results] == [0, 0], [err for _, err in results]
        assert revision_of(url) == migrations.heads()
        engine = create_engine(url)
        with engine.connect() as conn:
            keys = set(conn.execute(select(sources.c.key)).scalars())
        engine.dispose()
        assert keys == {"feed0", "feed1"}


def test_references_are_enforced_after_a_migration(database_url: str) -> None:
    """Migrating turns SQLite's foreign keys off for a while: they come back on."""
    store = Store.open(database_url)
    try:
        with pytest.raises(StoreError):
            store.upsert_entries(404, [entry(guid="orphan")], T0)  # no source 404
        assert store.entry_count() == 0
    finally:
        store.close()
