"""Tag slugs: readable, stable, safe as one path segment."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.slugs import MAX_LENGTH, slug_href, tag_slug


@pytest.mark.parametrize(
    ("tag", "slug"),
    [
        ("Deep Learning", "deep-learning"),
        ("deep learning", "deep-learning"),
        ("  KV   cache ", "kv-cache"),
        ("机器学习", "机器学习"),
        ("月度 复盘", "月度-复盘"),
        ("ＡＢＣ", "abc"),  # full-width letters fold to ASCII (NFKC)
        ("C/C++", "c-c"),
        ("../etc/passwd", "etc-passwd"),
        ("web.feeds", "web-feeds"),
        ("snake_case", "snake-case"),
    ],
)
def test_slug_examples(tag: str, slug: str) -> None:
    assert tag_slug(tag) == slug


def test_tag_without_letters_gets_a_stable_hashed_slug() -> None:
    assert tag_slug("+++") == tag_slug("+++")
    assert tag_slug("+++").startswith("tag-")
    assert tag_slug("+++") != tag_slug("###")


def test_long_tags_are_cut_but_stay_distinct() -> None:
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    assert len(tag_slug(a)) <= MAX_LENGTH
    assert tag_slug(a) != tag_slug(b)


def test_href_percent_encodes_non_ascii() -> None:
    assert slug_href("机器学习") == "%E6%9C%BA%E5%99%A8%E5%AD%A6%E4%B9%A0"
    assert slug_href("deep-learning") == "deep-learning"


SAFE = re.compile(r"^[^\W_](?:[^\W_]|-(?=[^\W_]))*$")


@given(st.text(min_size=1, max_size=120))
def test_every_slug_is_one_safe_path_segment(tag: str) -> None:
    slug = tag_slug(tag)
    assert SAFE.match(slug), slug
    assert 0 < len(slug) <= MAX_LENGTH
    assert "." not in slug and "/" not in slug and "\\" not in slug
    assert tag_slug(tag) == slug
