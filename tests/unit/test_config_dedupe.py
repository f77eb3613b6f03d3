from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load
from aggregator.errors import ConfigError
from aggregator.settings import dedupe_settings


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_dedupe_section_reaches_the_dedupe_settings(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            '[dedupe]\ntracking_params = ["source", "hsa_*"]\n'
            "near_threshold = 0.9\nnear_min_words = 80\n",
        )
    )
    assert config.dedupe.tracking_params == ("source", "hsa_*")
    settings = dedupe_settings(config)
    assert (settings.near_threshold, settings.near_min_words) == (0.9, 80)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("near_threshold = 0.2", "dedupe.near_threshold"),
        ("near_min_words = 3", "dedupe.near_min_words"),
        ("tracking_params = 'utm'", "dedupe.tracking_params"),
        ("near_treshold = 0.9", "dedupe.near_treshold"),
    ],
)
def test_bad_dedupe_values_are_refused_by_name(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, f"[dedupe]\n{line}\n"))
