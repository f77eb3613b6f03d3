from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from aggregator.urls import (
    _parsed_canonical_url,
    _parsed_is_article_url,
    canonical_url,
    is_article_url,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("HTTPS://Example.ORG/a/", "https://example.org/a"),
        ("https://example.org:443/a", "https://example.org/a"),
        ("http://example.org/a/index.html", "https://example.org/a"),
        ("https://example.org/a?utm_source=x&b=2&a=1#frag", "https://example.org/a?a=1&b=2"),
        ("https://example.org/a?fbclid=1&gclid=2&ref=3", "https://example.org/a"),
    ],
)
def test_same_article_same_canonical_url(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b)


def test_different_articles_stay_different() -> None:
    assert canonical_url("https://example.org/a") != canonical_url("https://example.org/b")
    assert canonical_url("https://example.org/a?id=1") != canonical_url(
        "https://example.org/a?id=2"
    )
    assert canonical_url("https://example.org:8080/a") != canonical_url("https://example.org/a")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://example.org/a?mc_cid=1&mc_eid=2&spm=3", "https://example.org/a"),
        ("https://example.org/caf%c3%a9/%7Ex", "https://example.org/café/~x"),
        ("https://example.org/a/index.htm", "https://example.org/a/"),
    ],
)
def test_more_spellings_of_one_article(a: str, b: str) -> None:
    assert canonical_url(a) == canonical_url(b)


def test_configured_tracking_params_and_prefixes_are_dropped() -> None:
    url = "https://example.org/a?source=x&hsa_cam=1&id=7"
    assert canonical_url(url) != canonical_url("https://example.org/a?id=7")
    assert canonical_url(url, ["source", "hsa_*"]) == "https://example.org/a?id=7"


def test_front_pages_do_not_identify_an_article() -> None:
    assert not is_article_url(canonical_url("https://example.org/"))
    assert is_article_url(canonical_url("https://example.org/?p=12"))
    assert is_article_url(canonical_url("https://example.org/posts/a/"))


_URL_PARTS = st.sampled_from(
    ["http://", "https://", "HTTP://", "ftp://", " ", "example.org", "Example.org", "a.b-c",
     ":443", ":8080", ":x", "@", "/", "//", "/a", "/B~c_d.e-f", "/index.html", "/index.htm",
     "%7e", "%2F", "é", "?", "?a=1&utm_source=x", "#f", ".", "-", ";p", "\t", "[", "0"]
)  # fmt: skip


@given(st.lists(_URL_PARTS, max_size=8).map("".join))
@example("https://example.org")
@example("http://example.org/a/")
@example("https://a.org//b/index.html")
def test_the_unparsed_fast_path_agrees_with_parsing(url: str) -> None:
    # canonical_url answers plain URLs without urlsplit; stored canonical
    # URLs must not change, so both ways must give the same form.
    assert _outcome(canonical_url, url) == _outcome(_parsed_canonical_url, url, ())
    assert _outcome(is_article_url, url) == _outcome(_parsed_is_article_url, url)


def _outcome(f: Callable[..., object], *args: object) -> object:
    try:
        return f(*args)
    except ValueError as e:  # urlsplit's, for a malformed host such as "http://["
        return f"ValueError: {e}"
