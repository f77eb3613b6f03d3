"""Write a new schema revision: `python -m aggregator.store.migrations "what changed"`.

Upgrades a scratch SQLite database to the newest revision, compares it with
store.schema.metadata and writes the difference as versions/NNNN_what_changed.py.
Read the file before committing it: autogenerate cannot tell a rename from a
drop and an add, and it writes no data migration.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from aggregator.store.migrations import alembic_config


def main(argv: list[str]) -> int:
    message = " ".join(argv).strip()
    if not message:
        print('usage: python -m aggregator.store.migrations "what changed"', file=sys.stderr)
        return 2
    script = ScriptDirectory.from_config(alembic_config())
    numbers = [int(r.revision) for r in script.walk_revisions() if r.revision.isdigit()]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'scratch.db'}")
        try:
            with engine.begin() as conn:
                cfg = alembic_config(conn)
                command.upgrade(cfg, "head")
                made = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
        finally:
            engine.dispose()
    paths = [s.path for s in (made if isinstance(made, list) else [made]) if s is not None]
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
