"""The layout rules of DESIGN.md, checked by walking every module's imports.

The rules themselves live in tests/unit/layout_rules.py as plain functions of a
package root; here they run on the real package (one test per rule and module)
and on copies of it with one forbidden import planted, which each must catch.
"""

from __future__ import annotations

import ast
import functools
import shutil
import textwrap
from pathlib import Path

import pytest

from tests.unit import layout_rules as rules

PACKAGE = Path(__file__).resolve().parents[2] / "aggregator"


def module_names() -> list[str]:
    return sorted(rules.walk(PACKAGE).modules)


@functools.cache
def real_violations(rule: str) -> tuple[str, ...]:
    return tuple(rules.RULES[rule](PACKAGE))


def check(rule: str, module: str) -> None:
    # every message starts with the offending module's full name
    found = [v for v in real_violations(rule) if v.startswith(f"{module} ")]
    assert not found, "\n".join(found)


MODULES = module_names()


@pytest.mark.parametrize("module", MODULES)
def test_third_party_imports_stay_in_their_room(module: str) -> None:
    check("third_party_ownership", module)


@pytest.mark.parametrize("module", MODULES)
def test_sql_is_written_only_in_store(module: str) -> None:
    check("sql_only_in_store", module)


@pytest.mark.parametrize("module", MODULES)
def test_nothing_imports_the_shell_and_the_shell_points_down(module: str) -> None:
    check("shell_direction", module)


@pytest.mark.parametrize("module", MODULES)
def test_stages_do_not_import_each_other(module: str) -> None:
    check("stage_isolation", module)


@pytest.mark.parametrize("module", MODULES)
def test_the_foundation_imports_only_the_foundation(module: str) -> None:
    check("foundation_purity", module)


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_a_place(module: str) -> None:
    check("every_module_has_a_place", module)


@pytest.mark.parametrize(("edge", "reason"), rules.ALLOWED_STAGE_EDGES.items())
def test_allowed_stage_edges_are_still_needed(edge: tuple[str, str], reason: str) -> None:
    importer, imported = edge
    used = [
        i
        for i in rules.internal(rules.walk(PACKAGE))
        if rules.under(i.importer, {importer}) and rules.under(i.target, {imported})
    ]
    assert used, f"no module imports {imported} from {importer} any more: drop the allowance"


#: the modules of the target layout
TARGET = {
    "aggregator",
    "aggregator.__main__",
    "aggregator.app",
    "aggregator.cli",
    "aggregator.clock",
    "aggregator.config",
    "aggregator.daemon",
    "aggregator.dedupe",
    "aggregator.digest",
    "aggregator.errors",
    "aggregator.feedlist",
    "aggregator.fingerprint",
    "aggregator.lock",
    "aggregator.logs",
    "aggregator.model",
    "aggregator.normalize",
    "aggregator.settings",
    "aggregator.slugs",
    "aggregator.text",
    "aggregator.urls",
    "aggregator.web",
    "aggregator.workers",
    "aggregator.deliver",
    "aggregator.deliver.files",
    *(
        f"aggregator.newsletter.{m}"
        for m in ("issues", "schedule", "compose", "subscribers", "send", "message", "smtp")
    ),
    "aggregator.newsletter",
    "aggregator.pipeline",
    *(f"aggregator.pipeline.{m}" for m in ("ingestion", "deduplication", "paging", "outputs")),
    "aggregator.render",
    *(f"aggregator.render.{m}" for m in ("atom", "rss", "jsonfeed", "pages", "email", "words")),
    "aggregator.sources",
    *(
        f"aggregator.sources.{m}"
        for m in (
            "content",
            "content_scan",
            "feeds",
            "fetch",
            "parse",
            "feed_entries",
            "opml",
            "schedule",
            "feed_state",
        )
    ),
    "aggregator.store",
    *(
        f"aggregator.store.{m}"
        for m in (
            "schema",
            "base",
            "sources",
            "entries",
            "dedupe",
            "newsletter",
            "runs",
            "housekeeping",
            "migrations",
            "migrations.env",
        )
    ),
}

#: modules the target layout replaced: store.py became store/, migrations/ moved
#: into it, jobs.py became app.py, the email modules became newsletter/
REPLACED = {
    "aggregator.migrations",
    "aggregator.jobs",
    "aggregator.issues",
    "aggregator.email_schedule",
    "aggregator.pipeline.mailing",
    "aggregator.deliver.message",
    "aggregator.deliver.smtp",
}


def test_the_walk_sees_the_modules() -> None:
    tree = rules.walk(PACKAGE)
    missing = sorted(TARGET - set(tree.modules))
    assert not missing, "not in the tree yet: " + ", ".join(missing)
    assert tree.modules["aggregator.store"].is_package, "store is a package, not store.py"
    assert tree.modules["aggregator.newsletter"].is_package


def test_replaced_modules_are_gone() -> None:
    present = rules.walk(PACKAGE).modules
    left = sorted(m for m in REPLACED if any(rules.under(n, {m}) for n in present))
    assert not left, "replaced but still in the tree: " + ", ".join(left)


# --------------------------------------------------------------------------- the walker


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, code in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(code), encoding="utf-8")
    return root


def test_the_walker_resolves_every_import_form(tmp_path: Path) -> None:
    root = write(
        tmp_path / "pkg",
        {
            "__init__.py": "from . import a\nfrom .sub import leaf\n",
            "a.py": """\
                import os.path
                import pkg.sub.leaf as leaf
                from pkg import sub, NAME
                from . import b
                from .b import thing
                from .sub import leaf as l2, helper
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from pkg.c import C

                def f():
                    import json
                    from .sub.leaf import *
                    return __import__("pkg.c")
            """,
            "b.py": "thing = 1\n",
            "c.py": "from importlib import import_module\nimport_module('pkg.b')\n",
            "sub/__init__.py": "from . import leaf\nfrom .. import b\nfrom ..c import C\n",
            "sub/leaf.py": "from .. import a\nfrom ..sub import helper\nfrom . import helper\n",
            "sub/helper.py": "",
        },
    )
    tree = rules.walk(root)
    got = {m: sorted({i.target for i in tree.imports if i.importer == m}) for m in tree.modules}
    assert got == {
        "pkg": ["pkg.a", "pkg.sub.leaf"],
        "pkg.a": [
            "json",
            "os.path",
            "pkg",
            "pkg.b",
            "pkg.c",
            "pkg.sub",
            "pkg.sub.helper",
            "pkg.sub.leaf",
            "typing",
        ],
        "pkg.b": [],
        "pkg.c": ["importlib", "pkg.b"],
        "pkg.sub": ["pkg.b", "pkg.c", "pkg.sub.leaf"],
        "pkg.sub.leaf": ["pkg.a", "pkg.sub.helper"],
        "pkg.sub.helper": [],
    }


SQL = [
    "SELECT id FROM entries",
    "select e.id, count(*) AS n from entries e where 1",
    "SELECT pg_advisory_xact_lock(:key)",
    "SELECT 1",
    "  INSERT INTO entries (id, guid) VALUES (?, ?)",
    "INSERT OR IGNORE INTO sources VALUES (1)",
    "UPDATE entries SET canonical_id = :c WHERE id = :i",
    "DELETE FROM runs WHERE started < :t",
    "DELETE FROM runs",
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER)",
    "CREATE UNIQUE INDEX ix_entries_guid ON entries (guid)",
    "DROP TABLE IF EXISTS runs",
    "ALTER TABLE entries ADD COLUMN lsh TEXT",
    "WITH recent AS (SELECT id FROM entries) SELECT * FROM recent",
    "PRAGMA journal_mode=WAL",
    "PRAGMA integrity_check",
    "VACUUM",
    "ANALYZE",
    "VACUUM INTO '/tmp/backup.db'",
    "BEGIN IMMEDIATE",
    "EXPLAIN QUERY PLAN SELECT id FROM entries",
]
NOT_SQL = [
    "update the feed list",
    "Update feeds from config.toml",
    "delete from the list",
    "Deleted from the subscriber list: {email}",
    "select the entries from a feed",
    "Created table of contents",
    "create index of posts",
    "drop the oldest issues",
    "vacuum",
    "analyze",
    "with care",
    "insert into the queue",
    "update",
    "PRAGMA",
]


@pytest.mark.parametrize("s", SQL)
def test_sql_shape_is_seen(s: str) -> None:
    assert rules.looks_like_sql(s)


@pytest.mark.parametrize("s", NOT_SQL)
def test_words_are_not_sql(s: str) -> None:
    assert not rules.looks_like_sql(s)


# --------------------------------------------------------------------------- planted


#: (rule, file to append to, code to append, words the new violation names);
#: a file that does not exist yet is created first
PLANTS = [
    (
        "third_party_ownership",
        "digest.py",
        "import sqlalchemy",
        ["aggregator.digest", "sqlalchemy"],
    ),
    (
        "third_party_ownership",
        "sources/parse.py",
        "def _late():\n    import httpx\n    return httpx",
        ["aggregator.sources.parse", "httpx", "import httpx"],
    ),
    (
        "third_party_ownership",
        "sources/fetch.py",
        "import feedparser",
        ["sources.fetch", "feedparser"],
    ),
    ("third_party_ownership", "render/words.py", "import tomlkit", ["render.words", "tomlkit"]),
    ("third_party_ownership", "cli.py", "import apscheduler.triggers.cron", ["cli", "apscheduler"]),
    (
        "shell_direction",
        "normalize.py",
        "from aggregator import pipeline",
        ["aggregator.normalize imports aggregator.pipeline"],
    ),
    (
        "stage_isolation",
        "normalize.py",
        "from aggregator import pipeline",
        ["aggregator.normalize imports aggregator.pipeline"],
    ),
    (
        "shell_direction",
        "model.py",
        "from aggregator.cli import main",
        ["aggregator.model imports aggregator.cli"],
    ),
    (
        "foundation_purity",
        "model.py",
        "from aggregator.cli import main",
        ["aggregator.model imports aggregator.cli"],
    ),
    ("foundation_purity", "model.py", "import numpy", ["aggregator.model imports numpy"]),
    (
        "foundation_purity",
        "config.py",
        "from aggregator.render import words",
        ["aggregator.config imports aggregator.render.words"],
    ),
    (
        "shell_direction",
        "deliver/files.py",
        "from aggregator import settings",
        ["aggregator.deliver.files imports aggregator.settings"],
    ),
    (
        "shell_direction",
        "web.py",
        "from aggregator import app",
        ["aggregator.web imports aggregator.app"],
    ),
    (
        "shell_direction",
        "newsletter/schedule.py",
        "from aggregator.daemon import run",
        ["aggregator.newsletter.schedule imports aggregator.daemon"],
    ),
    (
        "shell_direction",
        "app.py",
        "import aggregator.cli",
        ["aggregator.app imports aggregator.cli"],
    ),
    (
        "stage_isolation",
        "digest.py",
        "from . import dedupe",
        ["aggregator.digest imports aggregator.dedupe", "from . import dedupe"],
    ),
    (
        "stage_isolation",
        "sources/parse.py",
        "import aggregator.render.atom",
        ["aggregator.sources.parse imports aggregator.render.atom"],
    ),
    (
        "stage_isolation",
        "render/pages.py",
        "from ..sources import fetch",
        ["aggregator.render.pages imports aggregator.sources.fetch"],
    ),
    (
        "stage_isolation",
        "render/__init__.py",
        "from ..normalize import normalize",
        ["aggregator.render imports aggregator.normalize"],
    ),
    (
        "stage_isolation",
        "render/atom.py",
        "import typing\nif typing.TYPE_CHECKING:\n    from aggregator.store import Store",
        ["aggregator.render.atom imports aggregator.store"],
    ),
    (
        "stage_isolation",
        "store/__init__.py",
        "from aggregator.render import email",
        ["aggregator.store imports aggregator.render.email"],
    ),
    (
        "sql_only_in_store",
        "render/pages.py",
        '_Q = "SELECT id FROM entries"',
        ["aggregator.render.pages", "SELECT id FROM entries"],
    ),
    (
        "sql_only_in_store",
        "digest.py",
        "def _q(cols, table):\n    return f'select {cols} from {table} where id = ?'",
        ["aggregator.digest", "select _ from _"],
    ),
    (
        "sql_only_in_store",
        "newsletter/send.py",
        "import sqlalchemy as sa\ndef _q(q):\n    return sa.text(q)",
        ["aggregator.newsletter.send", "sa.text(q)"],
    ),
    ("every_module_has_a_place", "helpers.py", "X = 1", ["aggregator.helpers"]),
]


#: target-layout modules the plants touch, created empty in the copy when the
#: tree does not have them yet
STUBS = [
    "app.py",
    "settings.py",
    "feedlist.py",
    "newsletter/__init__.py",
    "newsletter/schedule.py",
    "newsletter/send.py",
]


def plant(root: Path, rel: str, code: str) -> None:
    if rel.startswith("store/") and not (root / "store").is_dir():
        rel = "store.py"  # the store as one module, before the store/ package lands
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(f"{before}\n{code}\n", encoding="utf-8")


def copy_package(tmp_path: Path) -> Path:
    copy = tmp_path / "aggregator"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for rel in STUBS:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).touch()
    return copy


@pytest.mark.parametrize(
    ("rule", "rel", "code", "names"),
    PLANTS,
    ids=[f"{rule}:{rel}:{code.splitlines()[-1].strip()}" for rule, rel, code, _ in PLANTS],
)
def test_a_planted_import_is_caught(
    tmp_path: Path, rule: str, rel: str, code: str, names: list[str]
) -> None:
    copy = copy_package(tmp_path)
    # compared with the copy before planting, so a tree mid-restructuring with
    # violations of its own still shows the planted one as new
    before = set(rules.RULES[rule](copy))
    plant(copy, rel, code)
    new = [v for v in rules.RULES[rule](copy) if v not in before]
    assert any(all(n in v for n in names) for v in new), (rel, code, new)


def test_comments_docstrings_and_words_are_not_sql(tmp_path: Path) -> None:
    copy = copy_package(tmp_path)
    before = set(rules.sql_only_in_store(copy))
    plant(
        copy,
        "render/pages.py",
        textwrap.dedent('''\
            # DELETE FROM entries WHERE id = 1
            def _f():
                """SELECT id FROM entries"""
                return "update the feed list", "delete from the list", "vacuum"

            _X = 1
            """UPDATE entries SET x = 1: an attribute's docstring, never run"""
        '''),
    )
    assert [v for v in rules.sql_only_in_store(copy) if v not in before] == []


#: a module past this many lines holds more than one idea (DESIGN.md: split at about 400)
MAX_MODULE_LINES = 500
#: a class past this many lines is a module of its own in disguise
MAX_CLASS_LINES = 400


def test_no_module_or_class_grows_past_one_idea() -> None:
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(PACKAGE)
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_long.append(f"{rel}: class {node.name} has {length} lines")
    assert too_long == []
