"""Ingesting a real content directory into a real SQLite file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator import config as config_mod
from aggregator import pipeline, settings
from aggregator.config import Config
from aggregator.digest import entry_excerpt
from aggregator.model import Entry, RawItem, SourceResult, StoredEntry
from aggregator.pipeline import ingestion
from aggregator.sources import content_scan
from aggregator.store import Store
from tests.databases import Databases

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


#: the database of each test's root (a test's own, see tests/databases.py)
_DATABASES: dict[Path, str] = {}


@pytest.fixture
def root(tmp_path: Path, databases: Databases) -> Iterator[Path]:
    (tmp_path / "content").mkdir()
    if databases.server is not None:
        _DATABASES[tmp_path] = databases.new()
    yield tmp_path
    _DATABASES.pop(tmp_path, None)


def make_config(root: Path, **content_keys: object) -> Config:
    data = {
        "site": {"base_url": "https://blog.example.org/", "timezone": "Asia/Shanghai"},
        "content": {"dir": "content", **content_keys},
        "database": {"url": _DATABASES.get(root, "sqlite:///data/test.db")},
        "output": {"dir": "public"},
    }
    return config_mod.parse(data, root / "config.toml")


def post(root: Path, rel: str, text: str) -> Path:
    path = root / "content" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ingest(cfg: Config, now: datetime = NOW, workers: int | None = None) -> SourceResult:
    store = Store.open(cfg.database.url)
    try:
        return ingestion._ingest_content(cfg, store, now, workers)
    finally:
        store.close()


def visible(cfg: Config, now: datetime = NOW) -> dict[str, StoredEntry]:
    store = Store.open(cfg.database.url)
    try:
        return {s.entry.guid: s for s in store.visible_entries(now)}
    finally:
        store.close()


def set_mtime(path: Path, when: datetime) -> None:
    ns = int(when.timestamp() * 1e9)
    os.utime(path, ns=(ns, ns))


# -- identity, edits, deletions -------------------------------------------------


def test_moving_a_post_keeps_its_identity_and_an_edit_updates_updated(root: Path) -> None:
    cfg = make_config(root)
    path = post(root, "a.md", "---\ntitle: A\ndate: 2026-11-01\n---\nFirst version.\n")
    assert ingest(cfg).new == 1
    first = visible(cfg)["a"]

    moved = root / "content" / "notes" / "2026" / "a.md"
    moved.parent.mkdir(parents=True)
    path.rename(moved)
    r = ingest(cfg)
    assert (r.new, r.changed, r.failures) == (0, 0, ())
    assert visible(cfg)["a"].id == first.id

    moved.write_text("---\ntitle: A\ndate: 2026-11-01\n---\nSecond version.\n", encoding="utf-8")
    edited_at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    set_mtime(moved, edited_at)
    assert ingest(cfg).changed == 1
    after = visible(cfg)["a"]
    assert after.id == first.id and after.first_seen == first.first_seen
    assert "Second version." in after.entry.text
    assert after.entry.published == first.entry.published
    assert after.entry.updated == edited_at


def test_a_deleted_post_leaves_the_digest_but_its_row_stays(root: Path) -> None:
    cfg = make_config(root)
    post(root, "a.md", "---\ntitle: A\ndate: 2026-11-01\n---\nA\n")
    gone = post(root, "b.md", "---\ntitle: B\ndate: 2026-11-02\n---\nB\n")
    ingest(cfg)
    gone.unlink()
    ingest(cfg)
    assert set(visible(cfg)) == {"a"}
    store = Store.open(cfg.database.url)
    assert store.entry_count() == 2
    assert list(store.content_files(store.ensure_source(cfg.content_source))) == ["a.md"]
    store.close()


def test_unchanged_size_and_mtime_means_the_file_is_not_read(root: Path) -> None:
    cfg = make_config(root)
    path = post(root, "a.md", "---\ntitle: Old title\ndate: 2026-11-01\n---\nBody\n")
    ingest(cfg)
    stat = path.stat()
    path.write_text("---\ntitle: New title\ndate: 2026-11-01\n---\nBody\n", encoding="utf-8")
    assert path.stat().st_size == stat.st_size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    ingest(cfg)
    assert visible(cfg)["a"].entry.title == "Old title"  # not read: same size and mtime

    set_mtime(path, datetime(2026, 11, 21, tzinfo=UTC))
    assert ingest(cfg).changed == 1
    assert visible(cfg)["a"].entry.title == "New title"


def test_a_touched_file_costs_a_hash_not_a_parse(root: Path) -> None:
    cfg = make_config(root)
    path = post(root, "a.md", "---\ntitle: A\ndate: 2026-11-01\n---\nBody\n")
    ingest(cfg)
    set_mtime(path, datetime(2026, 11, 21, tzinfo=UTC))
    store = Store.open(cfg.database.url)
    source_id = store.ensure_source(cfg.content_source)
    scanner = content_scan.Scanner(
        settings.content_settings(cfg), store.content_files(source_id), _no_parse
    )
    assert [e for batch in scanner.batches() for e in batch] == []
    assert (scanner.outcome.read, scanner.outcome.parsed) == (1, 0)
    assert scanner.outcome.present == {"a"}
    store.save_content_files(source_id, scanner.outcome.states, scanner.outcome.removed)
    # the new mtime is remembered: next time it is not even read
    scanner = content_scan.Scanner(
        settings.content_settings(cfg), store.content_files(source_id), _no_parse
    )
    [e for batch in scanner.batches() for e in batch]
    assert scanner.outcome.read == 0
    store.close()


def _no_parse(item: RawItem) -> Entry:
    raise AssertionError("a touched file was parsed")


# -- publishing rules -----------------------------------------------------------


def test_drafts_never_appear_and_a_future_post_appears_when_its_time_comes(
    root: Path,
) -> None:
    cfg = make_config(root)
    post(root, "draft.md", "---\ntitle: D\ndate: 2026-11-01\ndraft: true\n---\nD\n")
    post(root, "future.md", "+++\ntitle = 'F'\ndate = 2026-11-25T08:00:00+08:00\n+++\nF\n")
    post(root, "now.md", "---\ntitle: N\ndate: 2026-11-20\n---\nN\n")
    ingest(cfg)
    assert set(visible(cfg, NOW)) == {"now"}
    later = NOW + timedelta(days=5)
    ingest(cfg, later)  # nothing changed on disk
    assert set(visible(cfg, later)) == {"now", "future"}
    assert visible(cfg, later)["future"].entry.published == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


def test_a_post_turned_draft_leaves_the_digest(root: Path) -> None:
    cfg = make_config(root)
    path = post(root, "a.md", "---\ntitle: A\ndate: 2026-11-01\n---\nA\n")
    ingest(cfg)
    path.write_text("---\ntitle: A\ndate: 2026-11-01\ndraft: true\n---\nA\n", encoding="utf-8")
    ingest(cfg)
    assert visible(cfg) == {}


def test_excerpt_summary_then_more_marker_then_automatic(root: Path) -> None:
    cfg = make_config(root, code_placeholder="[代码]")
    post(root, "s.md", "---\ntitle: S\ndate: 2026-11-01\nsummary: Mine.\n---\nBody text.\n")
    post(
        root,
        "m.md",
        "---\ntitle: M\ndate: 2026-11-01\n---\nLead with $x_1$.\n\n<!--more-->\n\nRest.\n",
    )
    post(
        root,
        "auto.md",
        "---\ntitle: Auto\ndate: 2026-11-01\n---\n# Heading\n\nSee:\n\n```sh\necho $HOME\n```\n\n"
        "![A chart](c.png) and a state-of-the-art result.\n",
    )
    ingest(cfg)
    v = visible(cfg)
    assert entry_excerpt(v["s"], 100, "...") == "Mine."
    # math keeps its TeX in excerpts, written with the \( \) delimiters
    assert entry_excerpt(v["m"], 100, "...") == r"Lead with \(x_1\)."
    assert entry_excerpt(v["auto"], 100, "...") == (
        "Heading See: [代码] A chart and a state-of-the-art result."
    )
    assert entry_excerpt(v["auto"], 30, "…") == "Heading See: [代码] A chart and…"


def test_relative_images_and_links_become_absolute_and_files_are_copied(root: Path) -> None:
    cfg = make_config(root, permalink="/blog/{slug}/")
    (root / "content" / "notes" / "img").mkdir(parents=True)
    (root / "content" / "notes" / "img" / "p.png").write_bytes(b"\x89PNG fake")
    (root / "content" / "notes" / "data.csv").write_text("a,b\n", encoding="utf-8")
    post(
        root,
        "notes/随笔.md",
        "---\ntitle: T\ndate: 2026-11-01\n---\n![pic](img/p.png) [other](../other-slug/) "
        "[csv](data.csv) [abs](https://x.org/)\n",
    )
    ingest(cfg)
    e = visible(cfg)["随笔"].entry
    assert e.link == "https://blog.example.org/blog/%E9%9A%8F%E7%AC%94/"
    assert 'src="https://blog.example.org/notes/img/p.png"' in e.content_html
    assert 'href="https://blog.example.org/blog/other-slug/"' in e.content_html
    assert 'href="https://blog.example.org/notes/data.csv"' in e.content_html
    assert 'href="https://x.org/"' in e.content_html
    store = Store.open(cfg.database.url)
    report = pipeline.build(cfg, store, NOW)
    store.close()
    assert (root / "public" / "notes" / "img" / "p.png").read_bytes() == b"\x89PNG fake"
    assert "notes/data.csv" in report.written
    assert not (root / "public" / "notes" / "随笔.md").exists()


# -- bad input --------------------------------------------------------------------

BAD = {
    # YAML notices the unclosed [ on the next line, and says so
    "invalid YAML": ("bad.md", b"---\ntitle: x\ntags: [a\ndate: 2026-01-01\n---\nx\n", "YAML", 4),
    "invalid TOML": ("bad.md", b'+++\ntitle = "x"\ndate = = 1\n+++\nx\n', "TOML", 3),
    "not UTF-8": ("bad.md", "---\ntitle: t\n---\n\n正文\n".encode("gbk"), "not UTF-8", 5),
    "empty": ("bad.md", b"  \n", "empty file", None),
    "binary": ("bad.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary file", None),
    "too large": ("bad.md", b"---\ntitle: t\n---\n" + b"x" * 3000 + b"\n", "over the limit", None),
    "bad date": ("bad.md", b"---\ntitle: t\ndate: next tuesday\n---\nx\n", "not a date", 3),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_reported_with_file_and_line_and_the_rest_goes_on(
    root: Path, case: str
) -> None:
    name, data, reason, line = BAD[case]
    cfg = make_config(root, max_size=2000)
    post(root, "good.md", "---\ntitle: Good\ndate: 2026-11-01\n---\nok\n")
    (root / "content" / name).write_bytes(data)
    r = ingest(cfg)
    assert r.new == 1 and set(visible(cfg)) == {"good"}
    (failure,) = r.failures
    bad = str(root / "content" / name)
    assert failure.location == (f"{bad}:{line}" if line else bad), failure
    assert reason in failure.reason


def test_a_bom_is_fine_and_another_encoding_can_be_configured(root: Path) -> None:
    post(root, "bom.md", "\ufeff---\ntitle: BOM\ndate: 2026-11-01\n---\n正文\n")
    (root / "content" / "gb.md").write_bytes(
        "---\ntitle: 国标\ndate: 2026-11-01\n---\n正文\n".encode("gb18030")
    )
    r = ingest(make_config(root, encoding="gb18030"))
    assert r.failures == ()
    titles = {s.entry.title for s in visible(make_config(root)).values()}
    assert titles == {"BOM", "国标"}


def test_symlink_outside_the_content_dir_is_reported_and_not_followed(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.md"
    outside.write_text("---\ntitle: Secret\ndate: 2026-11-01\n---\nsecret\n", encoding="utf-8")
    (root / "content" / "link.md").symlink_to(outside)
    (root / "content" / "dirlink").symlink_to(outside.parent)
    post(root, "good.md", "---\ntitle: Good\ndate: 2026-11-01\n---\nok\n")
    r = ingest(make_config(root))
    assert set(visible(make_config(root))) == {"good"}
    assert {f.location for f in r.failures} == {
        str(root / "content" / "link.md"),
        str(root / "content" / "dirlink"),
    }
    assert all("outside the content directory" in f.reason for f in r.failures)


def test_a_broken_file_keeps_its_last_good_version_while_deletions_apply(root: Path) -> None:
    cfg = make_config(root)
    a = post(root, "a.md", "---\ntitle: A\ndate: 2026-11-01\n---\nGood A\n")
    b = post(root, "b.md", "---\ntitle: B\ndate: 2026-11-01\n---\nB\n")
    ingest(cfg)
    a.write_text("---\ntitle: A\ntags: [broken\n---\nBad A\n", encoding="utf-8")
    b.unlink()
    r = ingest(cfg)
    assert [f.location for f in r.failures] == [f"{a}:4"]
    v = visible(cfg)
    assert set(v) == {"a"} and "Good A" in v["a"].entry.text
    # fixed again: read again (its state was not overwritten by the failure)
    a.write_text("---\ntitle: A\ndate: 2026-11-01\n---\nFixed A\n", encoding="utf-8")
    assert ingest(cfg).changed == 1
    assert "Fixed A" in visible(cfg)["a"].entry.text


def test_two_posts_claiming_one_id_or_slug_are_both_reported(root: Path) -> None:
    cfg = make_config(root)
    post(root, "a.md", "---\ntitle: A\nid: same\ndate: 2026-11-01\n---\nA\n")
    post(root, "b.md", "---\ntitle: B\nid: same\ndate: 2026-11-01\n---\nB\n")
    post(root, "c.md", "---\ntitle: C\nslug: shared\ndate: 2026-11-01\n---\nC\n")
    post(root, "notes/shared.md", "---\ntitle: D\nid: d\ndate: 2026-11-01\n---\nD\n")
    r = ingest(cfg)
    located = {Path(f.location).name: f.reason for f in r.failures}
    assert set(located) == {"a.md", "b.md", "c.md", "shared.md"}
    assert "id 'same'" in located["a.md"] and "b.md" in located["a.md"]
    assert "permalink https://blog.example.org/posts/shared/" in located["shared.md"]
    # the first by path keeps the identity; the other waits for the clash to be fixed
    assert {s.entry.title for s in visible(cfg).values()} == {"A", "C"}
    assert len(ingest(cfg).failures) == 4  # still reported on the next run


def test_no_title_takes_the_first_heading_and_no_date_warns_and_uses_mtime(
    root: Path,
) -> None:
    path = post(root, "plain.md", "Intro line.\n\n## 真正的标题\n\nBody\n")
    set_mtime(path, datetime(2026, 10, 1, 8, 0, tzinfo=UTC))
    r = ingest(make_config(root))
    e = visible(make_config(root))["plain"].entry
    assert e.title == "真正的标题"
    assert e.published == datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    (warning,) = r.warnings
    assert warning.location == str(path) and "no 'date'" in warning.reason


def test_parallel_parsing_gives_the_same_entries_as_serial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(content_scan, "PARALLEL_THRESHOLD", 4)
    results = []
    for workers in (1, 2):
        root = tmp_path / str(workers)
        (root / "content").mkdir(parents=True)
        for i in range(40):
            post(
                root, f"d{i % 3}/p{i}.md", f"---\ntitle: P{i}\ndate: 2026-11-01\n---\n$x_{i}$ 文\n"
            )
        cfg = make_config(root)
        assert ingest(cfg, workers=workers).new == 40
        results.append({g: s.entry.content_hash for g, s in visible(cfg).items()})
    assert results[0] == results[1] and len(results[0]) == 40


def test_parallel_parsing_from_a_thread_uses_forkserver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon scans from a scheduler thread: forking then is unsafe, forkserver works."""
    import threading

    monkeypatch.setattr(content_scan, "PARALLEL_THRESHOLD", 4)
    (tmp_path / "content").mkdir()
    for i in range(12):
        post(tmp_path, f"p{i}.md", f"---\ntitle: P{i}\ndate: 2026-11-01\n---\nx\n")
    cfg = make_config(tmp_path)
    results: list[SourceResult] = []
    thread = threading.Thread(target=lambda: results.append(ingest(cfg, workers=2)))
    thread.start()
    thread.join(timeout=60)
    assert results and results[0].new == 12


def test_a_new_post_cannot_take_the_id_of_a_stored_one(root: Path) -> None:
    cfg = make_config(root)
    post(root, "z-old.md", "---\ntitle: Old\nid: x\ndate: 2026-11-01\n---\nOld\n")
    ingest(cfg)
    post(root, "a-new.md", "---\ntitle: New\nid: x\ndate: 2026-11-02\n---\nNew\n")
    r = ingest(cfg)
    assert sorted(Path(f.location).name for f in r.failures) == ["a-new.md", "z-old.md"]
    assert visible(cfg)["x"].entry.title == "Old"  # the stored post keeps its identity
