"""Precision and recall of dedupe on the labeled corpus (tests/data/dedupe)."""

from __future__ import annotations

import pytest

from tests.dedupe_corpus import SETTINGS, Case, cluster_case, judge_case, load_cases

CASES = load_cases()


def test_corpus_is_big_enough_and_covers_every_layer() -> None:
    merges = [c for c in CASES if c.expect == "merge"]
    traps = [c for c in CASES if c.expect == "apart"]
    assert len(merges) >= 40 and len(traps) >= 20
    layers = set().union(*(c.layers for c in merges))
    assert layers == {"guid", "url", "fingerprint", "near"}
    for layer in layers:
        assert sum(1 for c in merges if layer in c.layers) >= 5, layer
    assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def test_precision_and_recall_are_both_one(capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = [judge_case(c, cluster_case(c, SETTINGS)) for c in CASES]
    tp = sum(1 for v in verdicts if v.case.expect == "merge" and v.merged)
    fn = sum(1 for v in verdicts if v.case.expect == "merge" and not v.merged)
    fp = sum(1 for v in verdicts if v.case.expect == "apart" and not v.apart)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    with capsys.disabled():
        print(
            f"\ndedupe corpus: {len(verdicts)} cases, precision {precision:.3f}, "
            f"recall {recall:.3f} (tp {tp}, fp {fp}, fn {fn})"
        )
    failed = [f"{v.case.name}: {'; '.join(v.problems)}" for v in verdicts if v.problems]
    assert not failed, "\n".join(failed)
    assert precision == 1.0 and recall == 1.0


@pytest.mark.parametrize("case", [c for c in CASES if c.expect == "merge"], ids=lambda c: c.name)
def test_a_merge_is_found_whatever_the_order_of_entries(case: Case) -> None:
    """Reversing the entries (ids, and so the order pairs are seen) changes nothing."""
    reversed_case = Case(
        case.name,
        case.expect,
        case.layers,
        len(case.entries) - 1 - case.canonical,
        case.tracking_params,
        tuple(reversed(case.entries)),
    )
    verdict = judge_case(reversed_case, cluster_case(reversed_case, SETTINGS))
    assert not verdict.problems, verdict.problems
