"""Scanning a real content directory in a temporary folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aggregator.errors import SourceError
from aggregator.model import Failure, RawItem
from aggregator.sources.content import ContentSettings, list_files, read_file


def scan(settings: ContentSettings) -> tuple[list[RawItem], list[Failure]]:
    """Every post read as the scanner reads each file: (items, failures)."""
    listing = list_files(settings)
    failures = list(listing.failures)
    items = []
    for f in listing.found:
        try:
            items.append(read_file(f.path, settings, f.rel, None, None)[0])
        except SourceError as e:
            failures.append(Failure(e.location, e.reason))
    return items, failures


def settings(root: Path) -> ContentSettings:
    return ContentSettings(
        dir=root,
        base_url="https://blog.example.org/",
        permalink="/posts/{slug}/",
        timezone=ZoneInfo("Asia/Shanghai"),
        author="Me",
        encoding="utf-8",
        max_size=5 * 1024 * 1024,
        code_placeholder="[code]",
    )


def test_yaml_and_toml_front_matter(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\ntitle: A\ndate: 2026-11-03 09:30\ntags: [x, 机器学习]\nsummary: Short.\n---\nBody\n",
        encoding="utf-8",
    )
    sub = tmp_path / "notes"
    sub.mkdir()
    (sub / "b.md").write_text(
        '+++\ntitle = "B"\ndate = 2026-10-20T10:00:00+08:00\n+++\n# Head\n', encoding="utf-8"
    )
    items, failures = scan(settings(tmp_path))
    assert failures == []
    a, b = sorted(items, key=lambda i: i.location)
    assert (a.title, a.tags, a.summary) == ("A", ("x", "机器学习"), "Short.")
    assert a.published == datetime(2026, 11, 3, 1, 30, tzinfo=UTC)
    assert a.link == "https://blog.example.org/posts/a/"
    assert b.guid == "b" and b.title == "B"
    assert b.published == datetime(2026, 10, 20, 2, 0, tzinfo=UTC)


def test_broken_front_matter_names_file_and_line_and_scan_goes_on(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("---\ntitle: Good\n---\nok\n", encoding="utf-8")
    (tmp_path / "bad.md").write_text(
        "---\ntitle: Bad\ntags: [unclosed\ndate: 2026-01-01\n---\nx\n", encoding="utf-8"
    )
    items, failures = scan(settings(tmp_path))
    assert [i.title for i in items] == ["Good"]
    (failure,) = failures
    assert failure.location.startswith(str(tmp_path / "bad.md") + ":")
    line = int(failure.location.rsplit(":", 1)[1])
    assert 3 <= line <= 5
    assert "YAML" in failure.reason


def test_non_utf8_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "gbk.md").write_bytes("---\ntitle: 中文\n---\n正文\n".encode("gbk"))
    items, failures = scan(settings(tmp_path))
    assert items == []
    assert "not UTF-8" in failures[0].reason


def test_non_ascii_slug_is_percent_encoded(tmp_path: Path) -> None:
    (tmp_path / "随笔.md").write_text("---\ntitle: 冬\n---\n正文\n", encoding="utf-8")
    (item,), _ = scan(settings(tmp_path))
    assert item.guid == "随笔"
    assert item.link == "https://blog.example.org/posts/%E9%9A%8F%E7%AC%94/"
