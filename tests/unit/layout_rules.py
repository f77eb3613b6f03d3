"""The layout rules of DESIGN.md as plain functions over a package root.

`walk(root)` reads every module under `root` (the package directory, or a copy
of it that keeps the name `aggregator`: the package name is `root.name`) and
resolves every import form to full module names. Each rule takes the root and
returns its violations, one line each, starting with the offending module's
name and naming the import as written and its line. tests/unit/test_layout.py
runs them on the real package and on copies with a forbidden import planted.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

P = "aggregator"


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True)
class Module:
    name: str  # full dotted name; a package's __init__ is the package itself
    path: Path
    is_package: bool
    source: str

    @property
    def nodes(self) -> tuple[ast.AST, ...]:
        return nodes(self.source)


@functools.cache
def nodes(source: str) -> tuple[ast.AST, ...]:
    """Every node of a module's tree in ast.walk order (the Module first).

    Cached by source text: the copies the planting tests make parse once.
    """
    return tuple(ast.walk(ast.parse(source)))


@dataclass(frozen=True)
class Import:
    importer: str  # full name of the importing module
    target: str  # full name of what it imports, resolved
    line: int
    written: str  # the statement as written, for the message

    def __str__(self) -> str:
        return f"{self.importer} imports {self.target} (line {self.line}: `{self.written}`)"


@dataclass(frozen=True)
class Tree:
    root: Path
    modules: dict[str, Module]
    #: every importable name under root: modules, packages, and directories of
    #: modules without an __init__ (namespace packages such as migrations/versions/)
    names: frozenset[str]
    imports: tuple[Import, ...]


def module_name(root: Path, path: Path) -> tuple[str, bool]:
    parts = path.relative_to(root).with_suffix("").parts
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join((root.name, *parts)), is_package


def walk(root: Path) -> Tree:
    root = root.resolve()
    modules: dict[str, Module] = {}
    names = {root.name}
    for path in sorted(root.rglob("*.py")):
        name, is_package = module_name(root, path)
        modules[name] = Module(name, path, is_package, path.read_text(encoding="utf-8"))
        names.add(name)
        parts = path.relative_to(root).parts[:-1]
        names.update(".".join((root.name, *parts[:n])) for n in range(1, len(parts) + 1))
    frozen = frozenset(names)
    imports = tuple(i for m in modules.values() for i in imports_of(m, frozen))
    return Tree(root, modules, frozen, imports)


def imports_of(module: Module, names: frozenset[str]) -> Iterator[Import]:
    """Every import in the module, resolved to full names.

    ast.walk visits the whole tree, so imports inside functions, methods, try
    blocks and `if TYPE_CHECKING:` blocks all count. TYPE_CHECKING imports count
    on purpose: a type-only import is still one module knowing another (its
    types reach signatures), and moving an import under TYPE_CHECKING must not
    be a way around a layout rule.
    """
    # the package a relative import is resolved against: a package's __init__
    # is its own package, a plain module's is its parent
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for node in module.nodes:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            # import a.b / import a.b as c
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                up = node.level - 1
                if up >= len(parts):
                    raise ValueError(f"{module.name}: relative import beyond the top package")
                base = ".".join(parts[: len(parts) - up])
                if node.module:
                    base = f"{base}.{node.module}"
            else:
                base = node.module or ""
            # `from a import b`: a.b when b is a module or package under root
            # (`from aggregator import pipeline`), else a (a name defined in a)
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base
                for alias in node.names
            ]
        if isinstance(node, ast.Import | ast.ImportFrom):
            for target in dict.fromkeys(targets):  # once per statement and target
                yield Import(module.name, target, node.lineno, ast.unparse(node))
        # importlib.import_module("a.b") / __import__("a.b") with a literal name
        if (
            isinstance(node, ast.Call)
            and _is_dynamic_import(node.func)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            yield Import(module.name, node.args[0].value, node.lineno, ast.unparse(node))


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"import_module", "__import__"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def under(name: str, prefixes: Iterable[str]) -> bool:
    """True when name is one of prefixes or inside one of them (a package)."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def internal(tree: Tree) -> Iterator[Import]:
    """Imports of modules of the package itself."""
    top = tree.root.name
    return (i for i in tree.imports if under(i.target, {top}))


# --------------------------------------------------------------------------- the map

#: third-party package -> the only places that may import it (a package covers
#: its modules)
OWNED: dict[str, frozenset[str]] = {
    # the database: store/ with its alembic migrations inside (store/migrations/)
    "sqlalchemy": frozenset({f"{P}.store"}),
    "alembic": frozenset({f"{P}.store"}),
    # feeds, pages and the one jinja2 Environment (newsletter's email templates
    # go through render's Environment, never through jinja2 itself)
    "jinja2": frozenset({f"{P}.render"}),
    "feedgen": frozenset({f"{P}.render"}),
    "premailer": frozenset({f"{P}.render"}),
    # code blocks highlighted on the server, on post pages
    "pygments": frozenset({f"{P}.render.code"}),
    "httpx": frozenset({f"{P}.sources.fetch"}),
    "feedparser": frozenset({f"{P}.sources.parse"}),
    # the HTTP shell: the Starlette app and its server
    "starlette": frozenset({f"{P}.web"}),
    "uvicorn": frozenset({f"{P}.web"}),
    # the scheduler (its SQLAlchemyJobStore comes through apscheduler, so the
    # daemon imports apscheduler, not sqlalchemy) and the newsletter's cron trigger
    "apscheduler": frozenset({f"{P}.daemon", f"{P}.newsletter.schedule"}),
    # MinHash signatures, vectorized
    "numpy": frozenset({f"{P}.fingerprint", f"{P}.mathspans"}),
    # editing config.toml in place, comments kept
    "tomlkit": frozenset({f"{P}.feedlist"}),
    # TeX -> MathML, behind texmath's checks (a failed formula stays TeX)
    "latex2mathml": frozenset({f"{P}.texmath"}),
    # TeX -> PNG images of the email's formulas (mathtext), and the PNG encoding
    "matplotlib": frozenset({f"{P}.mathspans"}),
    "PIL": frozenset({f"{P}.mathspans"}),
}

#: the shell: orchestration and the ways in. No other module imports these.
#: (each may be a module or a package: cli/ counts as cli.py did)
SHELL_MODULES = frozenset(
    {
        f"{P}.cli",
        f"{P}.__main__",
        f"{P}.daemon",
        f"{P}.web",
        f"{P}.app",
        # config -> per-stage settings: it imports the stages' settings types,
        # so it sits above the stages, not beside model and errors
        f"{P}.settings",
        # editing config.toml for `feeds add/remove/import`: an app helper
        f"{P}.feedlist",
        # what `status` and /healthz say, read from the store and the
        # newsletter's schedule: an app helper
        f"{P}.status",
    }
)
#: packages whose every module is shell
SHELL_PACKAGES = frozenset({f"{P}.pipeline", f"{P}.newsletter"})

#: the front doors: what app and the layers below it never import
_ABOVE_APP = frozenset({f"{P}.cli", f"{P}.__main__", f"{P}.daemon", f"{P}.web"})
#: inside the shell the direction is cli and daemon -> app -> pipeline and
#: newsletter; importer (a package covers its modules) -> what it may not import
SHELL_MAY_NOT_IMPORT: dict[str, frozenset[str]] = {
    **{
        below: _ABOVE_APP | {f"{P}.app"}
        for below in (
            f"{P}.pipeline",
            f"{P}.newsletter",
            f"{P}.settings",
            f"{P}.feedlist",
            f"{P}.status",
        )
    },
    f"{P}.app": _ABOVE_APP,
    f"{P}.daemon": frozenset({f"{P}.cli", f"{P}.__main__"}),
    f"{P}.cli": frozenset({f"{P}.__main__"}),
    # the HTTP app is given callables by the daemon and the CLI: it imports no
    # other shell module
    f"{P}.web": (SHELL_MODULES | SHELL_PACKAGES) - {f"{P}.web"},
}

#: stage -> its modules and packages
STAGES: dict[str, frozenset[str]] = {
    "sources": frozenset({f"{P}.sources"}),
    "normalize": frozenset({f"{P}.normalize"}),
    # identity and syndicated copies: one stage, two modules
    "dedupe": frozenset({f"{P}.dedupe", f"{P}.fingerprint"}),
    "digest": frozenset({f"{P}.digest"}),
    "render": frozenset({f"{P}.render"}),
    "deliver": frozenset({f"{P}.deliver"}),
    "store": frozenset({f"{P}.store"}),
}

#: what any module may import: the domain types, errors, the clock, pure helpers,
#: configuration, and the package itself (its __init__: version, PROJECT_URL)
FOUNDATION = frozenset(
    {
        P,
        f"{P}.model",
        f"{P}.errors",
        f"{P}.clock",
        f"{P}.text",
        # untrusted HTML made safe and XML-clean in bounded time (pure; text re-exports it)
        f"{P}.sanitize",
        # TeX math in Markdown -> MathML (pure; text uses it)
        f"{P}.texmath",
        # MathML from feeds: the allowlist, KaTeX/MathJax reduced (pure; sanitize uses it)
        f"{P}.mathml",
        # formulas in excerpts -> MathML (pages) or PNG images (email) (pure)
        f"{P}.mathspans",
        f"{P}.urls",
        f"{P}.slugs",
        f"{P}.config",
        f"{P}.logs",
        f"{P}.workers",
        f"{P}.lock",
    }
)

#: the stage-to-stage imports the code needs, each with its reason; any other
#: edge between two stages fails. (importer, imported), either may be a package.
ALLOWED_STAGE_EDGES: dict[tuple[str, str], str] = {
    (f"{P}.sources.feed_entries", f"{P}.normalize"): (
        "the parse workers normalize items in the worker process, so only Entries cross back"
    ),
    (f"{P}.normalize", f"{P}.fingerprint"): "an entry's text identity is computed when it is made",
    (f"{P}.render", f"{P}.digest"): "render draws what digest selected: its page and history types",
    (f"{P}.store.dedupe", f"{P}.fingerprint"): (
        "the store indexes stored LSH keys by fingerprint.index_keys, the rule's one statement"
    ),
}


def stage_of(name: str) -> str | None:
    for stage, members in STAGES.items():
        if under(name, members):
            return stage
    return None


def is_shell(name: str) -> bool:
    # a shell module may grow into a package (cli/): its modules stay shell
    return under(name, SHELL_MODULES | SHELL_PACKAGES)


def is_foundation(name: str) -> bool:
    # the package's __init__ by name only (everything is under it); the others
    # may grow into packages
    return name == P or under(name, FOUNDATION - {P})


def place_of(name: str) -> str | None:
    if is_shell(name):
        return "shell"
    if is_foundation(name):
        return "foundation"
    stage = stage_of(name)
    return f"stage {stage}" if stage else None


# --------------------------------------------------------------------------- the rules

Rule = Callable[[Path], list[str]]


def third_party_ownership(root: Path) -> list[str]:
    """sqlalchemy only in store/, jinja2 only in render/, httpx only in fetch..."""
    out = []
    for imp in walk(root).imports:
        top = imp.target.split(".")[0]
        owners = OWNED.get(top)
        if owners is not None and not under(imp.importer, owners):
            out.append(f"{imp}: {top} belongs to {', '.join(sorted(owners))}")
    return out


def shell_direction(root: Path) -> list[str]:
    """No module outside the shell imports the shell; inside it, imports point down."""
    out = []
    for imp in internal(walk(root)):
        if not is_shell(imp.importer):
            if is_shell(imp.target):
                out.append(f"{imp}: {imp.target} is the shell, {imp.importer} is not")
            continue
        for importer, forbidden in SHELL_MAY_NOT_IMPORT.items():
            if under(imp.importer, {importer}) and under(imp.target, forbidden):
                out.append(f"{imp}: the shell's imports point down, not at {imp.target}")
    return out


def stage_isolation(root: Path) -> list[str]:
    """A stage imports its own modules, the foundation, and the ALLOWED edges only."""
    out = []
    for imp in internal(walk(root)):
        stage = stage_of(imp.importer)
        if stage is None or is_foundation(imp.target):
            continue
        if stage_of(imp.target) == stage:
            continue
        if any(under(imp.importer, {a}) and under(imp.target, {b}) for a, b in ALLOWED_STAGE_EDGES):
            continue
        where = place_of(imp.target) or "a module with no place in the layout"
        out.append(f"{imp}: stage {stage} may not import {where}")
    return out


#: model imports errors and the standard library only
MODEL_MAY_IMPORT = frozenset({f"{P}.errors"})


def foundation_purity(root: Path) -> list[str]:
    """The foundation imports only the foundation; model only errors and the stdlib."""
    out = []
    tree = walk(root)
    top = tree.root.name
    for imp in tree.imports:
        if not is_foundation(imp.importer):
            continue
        is_internal = under(imp.target, {top})
        if under(imp.importer, {f"{P}.model"}):
            stdlib = imp.target.split(".")[0] in sys.stdlib_module_names | {"__future__"}
            if (is_internal and imp.target not in MODEL_MAY_IMPORT) or not (is_internal or stdlib):
                out.append(f"{imp}: model imports errors and the standard library only")
        elif is_internal and not is_foundation(imp.target):
            where = place_of(imp.target) or "a module with no place in the layout"
            out.append(f"{imp}: the foundation may not import {where}")
    return out


def every_module_has_a_place(root: Path) -> list[str]:
    """Each module is shell, a stage, or foundation: a new module needs a decision."""
    return [
        f"{name} ({m.path.relative_to(root.resolve().parent)}) is neither shell, stage "
        f"nor foundation"
        for name, m in walk(root).modules.items()
        if place_of(name) is None
    ]


# ---------------------------------------------------------------------------- SQL

_IDENT = r"[\w.\"`\[\]]+"
_COLUMN = r"(?:[\w.]+(?:\s*\([^()]*\))?|\?|:\w+)(?:\s+AS\s+\w+)?"
#: the start of an SQL statement, by shape: a keyword followed by the tokens SQL
#: puts after it, so "update the feed list" or "delete from the list" never match
SQL_SHAPE = re.compile(
    rf"""^\s*(?:EXPLAIN\s+(?:QUERY\s+PLAN\s+)?)?(?:
      SELECT\s+(?:DISTINCT\s+)?(?:\*|{_COLUMN}(?:\s*,\s*{_COLUMN})*)\s+FROM\s+{_IDENT}
    | SELECT\s+(?:\d+|[\w.]+\s*\()
    | INSERT\s+(?:OR\s+\w+\s+)?INTO\s+{_IDENT}\s*(?:\(|VALUES\b|SELECT\b|DEFAULT\s+VALUES\b)
    | UPDATE\s+{_IDENT}\s+SET\s+[\w"]+\s*=
    | DELETE\s+FROM\s+{_IDENT}\s*(?:WHERE\b|RETURNING\b|USING\b|;|$)
    | CREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT}\s*(?:\(|AS\b)
    | CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT}\s+ON\b
    | CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?VIEW\s+{_IDENT}\s+AS\b
    | CREATE\s+TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?{_IDENT}\s+(?:BEFORE|AFTER|INSTEAD)\b
    | DROP\s+(?:TABLE|INDEX|VIEW|TRIGGER|SEQUENCE)\s+(?:IF\s+EXISTS\s+)?{_IDENT}
        \s*(?:;|$|CASCADE\b|RESTRICT\b)
    | ALTER\s+TABLE\s+{_IDENT}\s+(?:ADD|DROP|RENAME|ALTER)\b
    | WITH\s+(?:RECURSIVE\s+)?\w+\s*(?:\([^()]*\))?\s+AS\s+(?:NOT\s+)?(?:MATERIALIZED\s+)?\(
    | PRAGMA\s+[\w.]+\s*(?:=|\(|;|$)
    | VACUUM\s+(?:\w+\s+)?INTO\s
    | (?-i:VACUUM|ANALYZE)(?:\s+{_IDENT})?\s*;?\s*$
    | BEGIN\s+(?:IMMEDIATE|EXCLUSIVE|DEFERRED)\b
    | LOCK\s+TABLE\s+{_IDENT}
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# (bare VACUUM and ANALYZE match in capitals only: "vacuum" is also a job's name)


def looks_like_sql(s: str) -> bool:
    return SQL_SHAPE.match(s) is not None


def _strings(tree: tuple[ast.AST, ...]) -> Iterator[tuple[int, str]]:
    """String literals that are not docstrings, with their line.

    A string standing alone as a statement (a docstring, or an attribute's
    docstring after an assignment) does nothing and is skipped. An f-string is
    read whole, each {field} as `_` (a name), so `f"SELECT {cols} FROM {t}"` is seen.
    """
    skip: set[int] = set()
    for node in tree:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant | ast.JoinedStr):
            skip.add(id(node.value))
            skip.update(id(n) for n in ast.walk(node.value))
        elif isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
            if id(node) not in skip:
                text = "".join(
                    v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "_"
                    for v in node.values
                )
                yield node.lineno, text
    for node in tree:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def _sqlalchemy_text_calls(tree: tuple[ast.AST, ...]) -> Iterator[tuple[int, str]]:
    """Calls of sqlalchemy's text(): `text(q)`, `sa.text(q)`, `sqlalchemy.sql.text(q)`."""
    text_names: set[str] = set()
    module_names: set[str] = set()
    for node in tree:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for a in node.names:
                if a.name == "text":
                    text_names.add(a.asname or a.name)
                else:  # `from sqlalchemy import sql` and the like
                    module_names.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "sqlalchemy":
                    module_names.add(a.asname or a.name.split(".")[0])
    for node in tree:
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in text_names:
            yield node.lineno, ast.unparse(node)
        elif isinstance(f, ast.Attribute) and f.attr == "text":
            base: ast.expr = f.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in module_names:
                yield node.lineno, ast.unparse(node)


@functools.cache
def sql_in(source: str) -> tuple[tuple[int, str], ...]:
    tree = nodes(source)
    found = [
        (line, f"SQL outside store/: {s.strip()[:60]!r}")
        for line, s in _strings(tree)
        if looks_like_sql(s)
    ]
    found += [
        (line, f"text() outside store/: {c[:60]}") for line, c in _sqlalchemy_text_calls(tree)
    ]
    return tuple(sorted(found))


def sql_only_in_store(root: Path) -> list[str]:
    """SQL statements and text() clauses are written in store/ only (migrations included)."""
    out = []
    for name, module in walk(root).modules.items():
        if under(name, STAGES["store"]):
            continue
        out += [f"{name} line {line}: {what}" for line, what in sql_in(module.source)]
    return out


RULES: dict[str, Rule] = {
    "third_party_ownership": third_party_ownership,
    "sql_only_in_store": sql_only_in_store,
    "shell_direction": shell_direction,
    "stage_isolation": stage_isolation,
    "foundation_purity": foundation_purity,
    "every_module_has_a_place": every_module_has_a_place,
}
