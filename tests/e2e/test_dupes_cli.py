"""`aggregator dupes` and `aggregator dupes split` on a copy of the bundled example."""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

from tests.e2e.test_cli import all_titles, run

TITLE = "How I read benchmark claims now"


def copy_id(output: str) -> int:
    """The id of the friend's copy in `aggregator dupes` output."""
    match = re.search(r"^\s+(\d+)\s+\S.*Friend's Notebook", output, re.MULTILINE)
    assert match, output
    return int(match.group(1))


def test_syndicated_copy_shows_once_with_also_in(example: Path, fixed_now: datetime) -> None:
    assert run(example, "run").exit_code == 0
    public = example.parent / "public"
    assert all_titles(public).count(TITLE) == 1
    # The pages and the email speak [site] language (zh-CN in the example).
    labels = {
        "index.html": "亦见于：Friend's Notebook",
        "email.html": "亦见于：Friend's Notebook",
        "email.txt": "亦见于：Friend's Notebook",
    }
    for name, label in labels.items():
        text = html.unescape((public / name).read_text(encoding="utf-8"))
        assert text.count(label) == 1, name
        # ... and it is said of the mirrored post: nothing else is named between them
        after_title = text.split(TITLE, 1)[1]
        next_entry = re.search(r"<h2|^\d+\. ", after_title, re.MULTILINE)
        end = next_entry.start() if next_entry else len(after_title)
        assert after_title.index(label) < end, name
    listing = run(example, "dupes").output
    assert TITLE in listing and "canonical" in listing and "Lin Wei's Notes" in listing
    assert "fingerprint" in listing and "1 clusters, 1 copies" in listing


def test_a_split_stays_split_after_the_next_run(example: Path, fixed_now: datetime) -> None:
    run(example, "run")
    entry = copy_id(run(example, "dupes").output)
    result = run(example, "dupes", "split", str(entry))
    assert result.exit_code == 0, result.output
    assert "no duplicates" in run(example, "dupes").output
    # The post is edited, so the next run judges it again: the split must hold.
    post = example.parent / "content" / "reading-benchmark-claims.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nA closing line.\n", encoding="utf-8")
    assert run(example, "run").exit_code == 0
    assert all_titles(example.parent / "public").count(TITLE) == 2
    assert "no duplicates" in run(example, "dupes", "--recluster").output
    assert all_titles(example.parent / "public").count(TITLE) == 2


def test_split_of_an_unlinked_entry_is_refused(example: Path, fixed_now: datetime) -> None:
    run(example, "run")
    result = run(example, "dupes", "split", "1")
    assert result.exit_code == 1
    assert "not linked" in result.output
    assert run(example, "dupes", "split", "999").exit_code == 1
