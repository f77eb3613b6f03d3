"""The fast forms of normalize's text functions against their plain definitions.

fold_space, link rebasing, tokens, weight, MinHash, band keys and the
HTML-to-text walk were rewritten for speed; each must give exactly what its
plain definition (the code it replaced, kept here) gives, because their
results are stored (entry text, fingerprints, LSH band keys). The pinned
values at the end must never change without a version bump.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from aggregator import fingerprint as fp
from aggregator import sanitize
from aggregator import text as tx
from aggregator.model import LshIndex, RawItem
from aggregator.normalize import normalize

#: white space str.split() and re's \s agree on, and look-alikes that are not white space
ODD_SPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000"
NOT_SPACE = "\u200b\ufeff\x00\u180e"
CJK = "学习日本語カタカナひらがな한국어\u3400\u4dbf\uf900\ufaff\u3040\u30ff\uac00\ud7af"
LATIN = "aZ09_-'.,ÉéßſıİﬁＡ１ǅΣς\u0301"

texts = st.text(
    alphabet=st.sampled_from(ODD_SPACE + NOT_SPACE + CJK + LATIN + "!?。，“”()") | st.characters(),
    max_size=80,
)


# -- fold_space ------------------------------------------------------------------


def fold_space_definition(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@given(texts)
def test_fold_space_is_the_regex_definition(text: str) -> None:
    assert tx.fold_space(text) == fold_space_definition(text)


def test_fold_space_folds_unicode_white_space() -> None:
    assert tx.fold_space("\u3000a\x1c\x85b\u2028 c\u200bd ") == "a b c\u200bd"


# -- link rebasing -----------------------------------------------------------------


def rebase_definition(base_url: str, link: str) -> str | None:
    """A link that does not parse (or does not join its base) is dropped: None."""
    try:
        if urlsplit(link).scheme or link.startswith("//"):
            return link
        return urljoin(base_url, link)
    except ValueError:
        return None


BASES = [
    "https://blog.example.org/posts/a/",
    "HTTP://Blog.Example.org:8080/a/b?q=1#f",
    "https://user:pw@h.example/x",
    "http://[::1]:80/x",
    "https://h.example",
    " https://lead.example/a",
    "https://h.example/a\tb/",
    "file:///tmp/x/",
    "ftp://files.example/d/",
    "feed://host.example/a/",
    "urn:uuid:1",
    "mailto:a@b.example",
    "example.org/relative",
    "https://[bad/",
]
#: links an absolute-path shortcut could get wrong (urljoin resolves or drops something)
TRICKY = ["/a/..", "/./x", "/a/.", "/x?", "/x#", "/x;", "/a;p/b", "/a\tb", "/a\nb", "/a//b"]
segments = st.sampled_from(["a", "b.html", ".", "..", "", ".x", "a;p", "é", "%7E", "a b", "\t"])
links = st.sampled_from(TRICKY) | st.builds(
    lambda lead, segs, tail: lead + "/".join(segs) + tail,
    st.sampled_from(["/", "/", "/", "//", "", "./", "../", "?", "#", "x:"]),
    st.lists(segments, max_size=4),
    st.sampled_from(["", "", "/", "?", "#", "?q=1", "#f", "?q#f", ";", "\n"]),
)


def outcome(f: Any, *args: str) -> Any:
    try:
        return f(*args)
    except ValueError as e:
        return ("ValueError", str(e))


@settings(max_examples=1000)
@given(st.sampled_from(BASES), links)
def test_rebase_is_the_urljoin_definition(base: str, link: str) -> None:
    def fast(base: str, link: str) -> str | None:
        return sanitize._rebase(base, sanitize._origin(base), link)

    assert outcome(fast, base, link) == outcome(rebase_definition, base, link)


def test_each_concurrent_sanitize_resolves_against_its_own_base() -> None:
    def clean(i: int) -> str:
        html = f'<a href="/p/{i}">a</a><img src="i{i}.png">'
        return tx.sanitize_html(html, f"https://site{i}.example/dir/")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(clean, range(400)))
    for i, html in enumerate(results):
        assert f'href="https://site{i}.example/p/{i}"' in html
        assert f'src="https://site{i}.example/dir/i{i}.png"' in html


def test_sanitize_without_base_keeps_relative_links() -> None:
    assert 'href="/p/1"' in tx.sanitize_html('<a href="/p/1">a</a>')
    assert 'href="/p/1"' in tx.sanitize_html('<a href="/p/1">a</a>', "")


# -- html_to_text ------------------------------------------------------------------


def html_to_text_definition(fragment: str, code_placeholder: str = "[code]") -> str:
    if not fragment.strip():
        return ""
    root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    parts: list[str] = []

    def walk(el: Any) -> None:
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag == "pre":
            parts.append(f" {code_placeholder} ")
        elif tag == "img":
            parts.append(f" {el.get('alt') or ''} ")
        elif tag == "code":
            parts.append(f"`{el.text_content()}`")
        elif tag in ("script", "style"):
            pass
        else:
            if tag in sanitize.BLOCK:
                parts.append(" ")
            if el.text and tag:
                parts.append(el.text)
            for child in el:
                walk(child)
            if tag in sanitize.BLOCK:
                parts.append(" ")
        if el.tail:
            parts.append(el.tail)

    if root.text:
        parts.append(root.text)
    for child in root:
        walk(child)
    return fold_space_definition("".join(parts))


TAGS = ["p", "div", "span", "a", "em", "pre", "code", "img", "br", "li", "h2", "td", "script"]
TAGS += ["style", "table", "figcaption", "kbd", "section", "math", "svg", "textarea"]
words = st.sampled_from(["x", "Word", "学习", " ", "\n", "&amp;", "&lt;b&gt;", "\u3000", "a  b"])
nodes = st.recursive(
    words | st.sampled_from(["<!-- c -->", "<?pi x?>", "<br>", "<img alt='pic  1'>", "<img>"]),
    lambda inner: st.builds(
        lambda tag, kids, close: f"<{tag}>{''.join(kids)}" + (f"</{tag}>" if close else ""),
        st.sampled_from(TAGS),
        st.lists(inner, max_size=4),
        st.booleans(),
    ),
    max_leaves=12,
)
fragments = st.lists(nodes, max_size=6).map("".join)


@settings(max_examples=300)
@given(fragments, st.sampled_from(["[code]", "", "<'\"&>"]))
def test_html_to_text_is_the_walk_definition(fragment: str, placeholder: str) -> None:
    assert tx.html_to_text(fragment, placeholder) == html_to_text_definition(fragment, placeholder)


def test_html_to_text_from_concurrent_threads() -> None:
    def text(i: int) -> str:
        return tx.html_to_text(
            f"<p>a{i}</p><pre>x</pre><img alt='q{i}'><code>c<b>{i}</b></code>", f"[c{i}]"
        )

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(text, range(400)))
    assert results == [f"a{i} [c{i}] q{i} `c{i}`" for i in range(400)]


# -- tokens and weight ------------------------------------------------------------


def tokens_definition(text: str) -> list[str]:
    return fp._TOKEN.findall(unicodedata.normalize("NFKC", text).casefold())


def weight_definition(toks: Sequence[str]) -> float:
    cjk = sum(1 for t in toks if fp._CJK_CHAR.fullmatch(t))
    return (len(toks) - cjk) + cjk / 2


@given(texts)
def test_tokens_and_weight_are_their_definitions(text: str) -> None:
    toks = tokens_definition(text)
    assert fp.tokens(text) == toks
    assert fp.weight(toks) == weight_definition(toks)
    assert fp._article_tokens_and_weight(text) == (
        fp.article_tokens(text),
        weight_definition(fp.article_tokens(text)),
    )


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_ascii_tokens_are_the_definition(text: str) -> None:
    assert fp.tokens(text) == tokens_definition(text)


# -- MinHash and band keys -----------------------------------------------------------


def minhash_definition(toks: Sequence[str], size: int = fp.SHINGLE_SIZE) -> tuple[int, ...]:
    if not toks:
        return ()
    hashes = np.array(
        [
            int.from_bytes(
                hashlib.blake2b(t.encode("utf-8"), digest_size=8, salt=b"aggr-tok").digest(),
                "little",
            )
            for t in toks
        ],
        dtype=np.uint64,
    )
    if len(hashes) < size:
        hashes = np.concatenate([hashes, np.zeros(size - len(hashes), dtype=np.uint64)])
    n = len(hashes) - size + 1
    shingle = hashes[:n] * fp._COMBINE[0]
    for i in range(1, size):
        shingle += hashes[i : i + n] * fp._COMBINE[i]
    shingle ^= shingle >> fp._SHIFT32
    shingle = (shingle * fp._MIX) >> fp._SHIFT32
    permuted = (fp._PERM_A * shingle + fp._PERM_B) >> fp._SHIFT32
    return tuple(int(v) for v in permuted.min(axis=1))


def band_keys_definition(signature: Sequence[int]) -> list[int]:
    if len(signature) < fp.BANDS * fp.ROWS:
        return []
    keys = []
    for b in range(fp.BANDS):
        values = signature[b * fp.ROWS : (b + 1) * fp.ROWS]
        raw = struct.pack(f"<BB{fp.ROWS}I", fp.SIGNATURE_VERSION, b, *values)
        digest = hashlib.blake2b(raw, digest_size=8).digest()
        keys.append(int.from_bytes(digest, "little") & ((1 << 63) - 1))
    return keys


token_lists = st.lists(st.sampled_from(["a", "b", "c", "学", "習"]) | st.text(max_size=6))


@given(token_lists, st.sampled_from([1, 2, 3]))
def test_minhash_and_band_keys_are_their_definitions(toks: list[str], size: int) -> None:
    signature = fp.minhash(toks, size)
    assert signature == minhash_definition(toks, size)
    assert fp.minhash(toks, size) == signature  # every token now cached
    assert fp.band_keys(signature) == band_keys_definition(signature)


def test_minhash_survives_the_token_cache_being_emptied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fp, "_TOKEN_CACHE_MAX", 3)
    toks = [f"fresh{i}" for i in range(20)] + ["fresh1", "fresh2"]
    assert fp.minhash(toks) == minhash_definition(toks)


# -- pinned values: a change here needs SIGNATURE_VERSION / FINGERPRINT_VERSION bumped --

PINNED_EN = " ".join(
    f"Sentence {i} of the pinned article, with Mixed-Case words and 2 numbers." for i in range(12)
)
PINNED_ZH = "学习Rust的第三个月：所有权、借用和生命周期终于讲得通了。" * 4


def test_fingerprints_and_band_keys_of_fixed_texts_never_change() -> None:
    assert fp.text_identity(PINNED_EN) == (
        "t1:93f72ae7a8ef031d3379e7f9ddcbf6c0",
        LshIndex(
            2,
            156.0,
            (
                1027867205855352916, 8847008565988355283, 664365281144222472,
                8842866826194319627, 9110404549040861974, 5542931251165641867,
                4396611542900052021, 5056954183463313312, 1495344790413533933,
                5150379500396625365,
            ),
        ),
    )  # fmt: skip
    assert fp.text_identity(PINNED_ZH) == (
        "t1:71585f70526690cc133662982255f995",
        LshIndex(
            2,
            50.0,
            (
                209953467981025140, 6027565372468311263, 5782343254812777925,
                7186411491727670293, 7977604778393116723, 4804215573980285022,
                49619886793130250, 8355295403229747740, 2669282176245264220,
                5485379341595413548,
            ),
        ),
    )  # fmt: skip


def test_a_normalized_entry_never_changes() -> None:
    item = RawItem(
        location="x",
        guid=None,
        title=None,
        link="https://blog.example.org/p/1/",
        canonical_link=None,
        published=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        updated=None,
        author=" A  B ",
        content_html=(
            '<p>Hello <a href="/about">me</a></p><pre>x</pre>'
            '<img src="i.png" alt="pic"><p>学习Rust</p>'
        ),
        summary=None,
        tags=(" t ", "t"),
    )
    entry = normalize(item, "https://blog.example.org/feed", datetime(2026, 2, 1, tzinfo=UTC))
    assert entry.content_html == (
        '<p>Hello <a href="https://blog.example.org/about" rel="noopener noreferrer">me</a></p>'
        '<pre>x</pre><img src="https://blog.example.org/p/1/i.png" alt="pic"><p>学习Rust</p>'
    )
    assert entry.text == entry.title == "Hello me [code] pic 学习Rust"
    assert (entry.author, entry.tags, entry.canonical_url) == (
        "A B",
        ("t",),
        "https://blog.example.org/p/1",
    )
    assert entry.content_hash == "1172c9938eec3580828cfea5d7b7a95d"
    assert entry.fingerprint == ""  # too short to identify an article
    assert entry.lsh is not None
    assert entry.lsh.keys[:2] == (5517728211713845232, 2052283647389725261)
