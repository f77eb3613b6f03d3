"""Fresh databases for store-level tests: SQLite files by default, or new
PostgreSQL databases when $AGGREGATOR_TEST_DATABASE_URL names a server.

    AGGREGATOR_TEST_DATABASE_URL=postgresql+psycopg://user:pw@127.0.0.1/aggregator_test

The URL's database is only used to connect: each test gets its own database
(CREATE DATABASE, so the role needs CREATEDB), dropped when the test ends, so
tests never see each other's rows and can open one database from two processes.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

ENV = "AGGREGATOR_TEST_DATABASE_URL"


def server_url() -> str | None:
    """$AGGREGATOR_TEST_DATABASE_URL if it names a database server (not SQLite)."""
    url = os.environ.get(ENV, "").strip()
    if not url or make_url(url).get_backend_name() == "sqlite":
        return None
    return url


class Databases:
    """Hands out empty databases for one test and drops them afterwards."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.server = server_url()
        self._made: list[str] = []

    def new(self, name: str = "a") -> str:
        """The URL of a new, empty database (`name` keeps SQLite files apart)."""
        if self.server is None:
            # no mkdir: Store.open makes a SQLite file's directory
            return f"sqlite:///{self.tmp_path / 'db' / name}.db"
        dbname = f"aggtest_{uuid.uuid4().hex[:16]}"
        self._admin(f'CREATE DATABASE "{dbname}"')
        self._made.append(dbname)
        return make_url(self.server).set(database=dbname).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Drop the databases this test made (closing any connection left open)."""
        while self._made:
            name = self._made.pop()
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except DBAPIError:
                # FORCE refuses to end an autovacuum worker it has no role for;
                # a plain DROP ends autovacuum itself (and waits up to 5 s).
                time.sleep(0.5)
                self._admin(f'DROP DATABASE IF EXISTS "{name}"')

    def _admin(self, sql: str) -> None:
        assert self.server is not None
        engine = create_engine(self.server, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()
