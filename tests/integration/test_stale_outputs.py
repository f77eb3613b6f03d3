"""Stale outputs: a build removes what the last build wrote and it no longer
produces, and nothing else. Real example site, real store, real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

from aggregator import config as config_mod
from aggregator import newsletter, pipeline
from aggregator.deliver.files import MANIFEST
from aggregator.model import BuildReport
from aggregator.store import Store
from tests.conftest import NOW


def build(config_path: Path) -> BuildReport:
    config = config_mod.load(config_path)
    store = Store.open(config.database.url)
    try:
        pipeline.ingest(config, store, NOW)
        return pipeline.build(config, store, NOW)
    finally:
        store.close()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def manifest(public: Path) -> dict[str, str]:
    files: dict[str, str] = json.loads((public / MANIFEST).read_text(encoding="utf-8"))["files"]
    return files


def all_files(public: Path) -> set[str]:
    return {
        p.relative_to(public).as_posix()
        for p in public.rglob("*")
        if p.is_file() and p.name != MANIFEST
    }


def test_a_tag_no_post_has_any_more_loses_its_page_and_feed(example: Path) -> None:
    public = example.parent / "public"
    build(example)
    assert (public / "tags/gan/index.html").is_file() and (public / "tags/gan.atom").is_file()
    # the user's own files, beside and inside directories the build writes
    (public / "robots.txt").write_text("User-agent: *\n", encoding="utf-8")
    (public / "tags/notes.txt").write_text("mine\n", encoding="utf-8")

    edit(example.parent / "content/gan-objective-revisited.md", "GAN, ", "")
    report = build(example)

    assert set(report.removed) == {"tags/gan/index.html", "tags/gan.atom"}
    assert not (public / "tags/gan.atom").exists()
    assert not (public / "tags/gan").exists(), "the emptied directory stays behind"
    assert (public / "robots.txt").read_text(encoding="utf-8") == "User-agent: *\n"
    assert (public / "tags/notes.txt").is_file()
    # every file this build produced is there, the tag index no longer links the tag
    assert set(manifest(public)) <= all_files(public)
    assert "tags/gan/" not in (public / "tags/index.html").read_text(encoding="utf-8")
    # and a build with nothing new removes nothing
    assert build(example).removed == ()


def test_fewer_pages_remove_the_pages_beyond_the_last(example: Path) -> None:
    public = example.parent / "public"
    build(example)
    assert (public / "page/2/index.html").is_file()
    edit(example, "page_size = 10", "page_size = 100")
    report = build(example)
    assert "page/2/index.html" in report.removed
    assert not (public / "page").exists()
    assert (public / "index.html").is_file()


def test_a_copied_image_goes_only_when_its_source_goes(example: Path) -> None:
    public = example.parent / "public"
    content = example.parent / "content"
    (content / "images/diagram.png").write_bytes(b"\x89PNG not really")
    build(example)
    assert (public / "images/codebook.png").read_bytes() == (
        content / "images/codebook.png"
    ).read_bytes()
    assert build(example).removed == ()  # still there in the source: kept
    assert (public / "images/diagram.png").is_file()

    (content / "images/diagram.png").unlink()
    assert build(example).removed == ("images/diagram.png",)
    assert not (public / "images/diagram.png").exists()
    assert (public / "images/codebook.png").is_file()


def test_a_stale_file_the_user_changed_is_kept(example: Path) -> None:
    public = example.parent / "public"
    build(example)
    (public / "tags/gan.atom").write_text("<feed>my own now</feed>", encoding="utf-8")
    edit(example.parent / "content/gan-objective-revisited.md", "GAN, ", "")
    report = build(example)
    assert report.removed == ("tags/gan/index.html",)
    assert (public / "tags/gan.atom").read_text(encoding="utf-8") == "<feed>my own now</feed>"
    assert "tags/gan.atom" not in manifest(public)  # no longer ours: never removed later
    assert build(example).removed == ()
    assert (public / "tags/gan.atom").is_file()


def test_issue_archive_pages_are_produced_by_every_build_and_kept(example: Path) -> None:
    config = config_mod.load(example)
    public = config.output.dir
    store = Store.open(config.database.url)
    try:
        pipeline.ingest(config, store, NOW)
        issue, _ = store.add_issue(newsletter.compose_issue(config, store, NOW))
        path = newsletter.archive_path(issue.key)
        first = pipeline.build(config, store, NOW)
        assert path in first.written and path in manifest(public)
        for _ in range(2):
            report = pipeline.build(config, store, NOW)
            assert report.removed == ()
            assert (public / path).read_text(encoding="utf-8") == issue.archive_html
    finally:
        store.close()


def test_feed_pages_from_before_archives_are_removed_once(example: Path) -> None:
    """Builds before the manifest wrote feed/page-N.atom; the first build with
    a manifest removes them, and nothing else it did not write."""
    public = example.parent / "public"
    (public / "feed").mkdir(parents=True)
    for n in (2, 3):
        (public / f"feed/page-{n}.atom").write_text("<feed/>", encoding="utf-8")
    (public / "feed/readme.txt").write_text("mine", encoding="utf-8")
    report = build(example)
    assert set(report.removed) == {"feed/page-2.atom", "feed/page-3.atom"}
    assert sorted(p.name for p in (public / "feed").iterdir() if p.name.startswith("page")) == []
    assert (public / "feed/readme.txt").is_file()
    # with a manifest, a file of that name the user adds later is theirs
    (public / "feed/page-9.atom").write_text("<feed/>", encoding="utf-8")
    assert build(example).removed == ()
    assert (public / "feed/page-9.atom").is_file()


def test_a_broken_manifest_removes_nothing_and_is_rewritten(example: Path) -> None:
    public = example.parent / "public"
    build(example)
    (public / MANIFEST).write_text('{"files": ["../../etc/passwd"]}', encoding="utf-8")
    edit(example.parent / "content/gan-objective-revisited.md", "GAN, ", "")
    assert build(example).removed == ()
    assert (public / "tags/gan.atom").is_file()
    assert "tags/gan.atom" not in manifest(public)


def test_a_manifest_entry_outside_the_output_directory_is_never_removed(
    example: Path,
) -> None:
    public = example.parent / "public"
    build(example)
    # the same bytes as a file the build wrote: only its path keeps it safe
    outside = example.parent / "precious.txt"
    outside.write_bytes((public / "index.html").read_bytes())
    doc = json.loads((public / MANIFEST).read_text(encoding="utf-8"))
    digest = doc["files"]["index.html"]
    doc["files"]["../precious.txt"] = digest
    doc["files"]["/etc/hostname"] = digest
    (public / MANIFEST).write_text(json.dumps(doc), encoding="utf-8")
    assert build(example).removed == ()
    assert outside.read_bytes() == (public / "index.html").read_bytes()
    assert not any(re.search(r"\.\.|^/", k) for k in manifest(public))
