"""The layout rules of DESIGN.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "aggregator"

#: third-party packages only one place may import
OWNED = {
    "sqlalchemy": {
        "store",
        "daemon",
        "migrations",
    },  # daemon: APScheduler's SQLAlchemyJobStore needs the engine URL only
    # the schema's history: migrations/ holds the revisions, store.py runs them
    "alembic": {"store", "migrations"},
    "jinja2": {"render"},
    "feedgen": {"render"},
    "premailer": {"render"},
    "httpx": {"sources.fetch"},
    "feedparser": {"sources.parse"},
    # the HTTP shell: the app and its server live in web.py, the scheduler in daemon.py
    "starlette": {"web"},
    "uvicorn": {"web"},
    "apscheduler": {"daemon", "email_schedule"},
    # MinHash signatures, vectorized (the dedupe index is computed in the parsing workers)
    "numpy": {"fingerprint"},
}
#: the shell: no stage may import these
SHELL = {
    "aggregator.cli",
    "aggregator.daemon",
    "aggregator.pipeline",
    "aggregator.__main__",
    "aggregator.jobs",  # pipeline calls wrapped in run records, for cron mode and the daemon
    "aggregator.web",  # the HTTP app, given callables by the daemon and the CLI
}
#: packages whose every module is shell: the orchestrator, one module per stage group
SHELL_PACKAGES = {"aggregator.pipeline"}


def is_shell(name: str) -> bool:
    return name in SHELL or any(name.startswith(p + ".") for p in SHELL_PACKAGES)


def modules() -> list[tuple[str, list[str]]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__").removesuffix("__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported: list[str] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.append(node.module)
        out.append((name or "__init__", imported))
    return out


def owner_allows(module: str, owners: set[str]) -> bool:
    return any(module == o or module.startswith(o + ".") for o in owners)


@pytest.mark.parametrize(("module", "imported"), modules())
def test_third_party_imports_stay_in_their_room(module: str, imported: list[str]) -> None:
    for name in imported:
        top = name.split(".")[0]
        if top in OWNED:
            assert owner_allows(module, OWNED[top]), f"aggregator.{module} imports {name}"


@pytest.mark.parametrize(("module", "imported"), modules())
def test_stages_do_not_import_the_shell(module: str, imported: list[str]) -> None:
    full = f"aggregator.{module}"
    if is_shell(full):
        return
    for name in imported:
        assert not is_shell(name), f"{full} imports {name}"


def test_sql_is_written_only_in_store() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        # migrations/: the schema's history may need SQL of its own (data moves)
        if path.name == "store.py" or "migrations" in path.relative_to(PACKAGE).parts:
            continue
        text = path.read_text(encoding="utf-8").upper()
        if any(
            k in text for k in ("SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE")
        ):
            offenders.append(path.name)
    assert offenders == []


def test_the_walk_sees_the_modules() -> None:
    names = {m for m, _ in modules()}
    assert {"store", "pipeline", "sources.fetch", "sources.parse", "render.atom", "cli"} <= names
    assert {"pipeline.ingestion", "pipeline.mailing", "email_schedule"} <= names
