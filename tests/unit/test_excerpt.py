"""The excerpt: one function, cut like a person would cut it."""

from __future__ import annotations

import regex
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.text import excerpt, grapheme_count


def clusters(text: str) -> list[str]:
    return list(regex.findall(r"\X", text))


def kept(result: str, ellipsis: str = "...") -> str:
    return result.removesuffix(ellipsis)


# -- examples ------------------------------------------------------------------

HYPHENATED = (
    "Every model card claimed a state-of-the-art result: an Anchor-free detector with "
    "Top-1 accuracy, a Qwen1.5-7B-Chat fine-tune, and I don't believe them."
)


def test_in_word_punctuation_survives_every_cut() -> None:
    for length in range(10, len(HYPHENATED)):
        words = kept(excerpt(HYPHENATED, length)).split(" ")
        for term in ("state-of-the-art", "Anchor-free", "Top-1", "Qwen1.5-7B-Chat", "don't"):
            # a term is either whole or absent: never "state-of" or "Qwen1"
            assert not any(term.startswith(w) and w != term for w in words if w), (length, words)


def test_short_text_is_returned_whole_without_ellipsis() -> None:
    assert excerpt("  short\n text  ", 50) == "short text"
    assert excerpt("恰好十个字符的中文句子", 11) == "恰好十个字符的中文句子"


def test_cut_text_ends_with_the_configured_ellipsis() -> None:
    assert excerpt("alpha beta gamma delta epsilon", 14) == "alpha beta..."
    assert excerpt("alpha beta gamma delta epsilon", 14, " […]") == "alpha beta […]"


def test_length_counts_graphemes_not_code_points() -> None:
    family = "👨\u200d👩\u200d👧"  # one emoji of five code points
    thumbs = "👍🏽"  # emoji with a skin tone: two code points
    e_acute = "e\u0301"  # e + combining acute accent
    text = (family + thumbs + e_acute + "中") * 5
    result = kept(excerpt(text, 6))
    assert clusters(result) == [family, thumbs, e_acute, "中", family, thumbs]


def test_cjk_may_be_cut_anywhere() -> None:
    text = "码本坍缩是训练里最常见的问题很多码字从来没有被选中"
    assert excerpt(text, 7) == "码本坍缩是训练..."


def test_prefers_a_sentence_end_in_the_last_fifth() -> None:
    text = "第一句话写在这里。第二句话很长很长很长很长很长很长"
    # budget 10: the sentence ends at 9, inside the last fifth (8..10)
    assert excerpt(text, 10) == "第一句话写在这里。..."
    # budget 20: the sentence end at 9 is too early to be preferred
    assert excerpt(text, 20) == "第一句话写在这里。第二句话很长很长很长很..."


def test_a_cut_after_a_full_stop_has_no_fourth_dot() -> None:
    text = "We met for dinner. Then we walked home along the river."
    assert excerpt(text, 20) == "We met for dinner..."
    assert excerpt(text, 20, ellipsis=" …") == "We met for dinner. …"


def test_math_spans_are_never_cut() -> None:
    text = r"核心只有一行：$z_q = \arg\min_k \|z_e - e_k\|_2$，也就是最近的码字。"
    for length in range(1, grapheme_count(text)):
        result = kept(excerpt(text, length))
        assert result.count("$") in (0, 2), (length, result)
    text = r"the error is \( \sqrt{0.85 \times 0.15 / 1000} \approx 1.1 \) points"
    for length in range(1, len(text)):
        result = kept(excerpt(text, length))
        assert ("\\(" in result) == ("\\)" in result), (length, result)


def test_urls_and_inline_code_are_never_cut() -> None:
    text = "see https://example.org/notes/fsq-overview and `If-None-Match: etag` here"
    for length in range(1, len(text)):
        result = kept(excerpt(text, length))
        assert "https" not in result or "https://example.org/notes/fsq-overview" in result
        assert result.count("`") in (0, 2), (length, result)


def test_placeholder_is_kept_whole() -> None:
    text = "Here is the idea: [code block] If the server answers"
    for length in range(19, 31):
        assert "[code" not in kept(excerpt(text, length)) or "[code block]" in excerpt(text, length)


def test_dangling_opening_punctuation_is_dropped() -> None:
    assert excerpt("some words (and a long parenthesis", 12) == "some words..."


# -- properties over generated mixed text ---------------------------------------

LATIN = st.from_regex(r"[A-Za-z]{1,8}(?:[-'.][A-Za-z0-9]{1,5}){0,2}", fullmatch=True)
NUMBER = st.from_regex(r"[0-9]{1,4}(?:[.,][0-9]{1,3})?%?", fullmatch=True)
CJK = st.text(alphabet="的核心只有一行码本坍缩训练问题。，！？；", min_size=1, max_size=6)
MATH = st.sampled_from(
    [r"\( p_{data}_x \)", r"$z_q = \arg\min_k$", r"\[ \mathcal{L} = 1 \]", "$$a + b$$", "$x$"]
)
URL = st.from_regex(r"https://[a-z]{1,8}\.org/[a-z0-9/_-]{0,12}", fullmatch=True)
CODE = st.from_regex(r"`[a-z()=.]{1,5}(?: [a-z()=.]{1,5})?`", fullmatch=True)
EMOJI = st.sampled_from(["👍🏽", "👨\u200d👩\u200d👧", "❄️", "e\u0301", "🇨🇳"])
ATOM = st.one_of(LATIN, NUMBER, MATH, URL, CODE, EMOJI)
SEP = st.sampled_from([" ", " ", "  ", "\n", "，", ", ", "。"])


@st.composite
def mixed_text(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Text made of atoms (which must never be split) and CJK runs, and its atoms."""
    parts: list[str] = []
    atoms: list[str] = []
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.booleans()):
            parts.append(draw(CJK))
        else:
            atom = draw(ATOM)
            atoms.append(atom)
            parts.append(atom)
        parts.append(draw(SEP))
    return "".join(parts), atoms


@settings(max_examples=300, deadline=None)
@given(mixed_text(), st.integers(1, 120))
def test_excerpt_invariants(generated: tuple[str, list[str]], length: int) -> None:
    text, _atoms = generated
    folded = " ".join(text.split())
    result = excerpt(text, length)
    if grapheme_count(folded) <= length:
        assert result == folded  # nothing cut, no ellipsis
        return
    assert result.endswith("...")
    head = kept(result)
    assert folded.startswith(head)  # a prefix of the folded text
    assert grapheme_count(head) <= length
    assert clusters(head) == clusters(folded)[: len(clusters(head))]  # no split cluster
    assert "  " not in head


@settings(max_examples=300, deadline=None)
@given(mixed_text(), st.integers(1, 120))
def test_excerpt_never_splits_an_atom(generated: tuple[str, list[str]], length: int) -> None:
    text, atoms = generated
    folded = " ".join(text.split())
    head = kept(excerpt(text, length))
    if not head:
        return
    # The cut falls at the end of `head`: no atom may straddle it.
    pos = 0
    for atom in atoms:
        start = folded.index(atom, pos)
        end = start + len(atom)
        pos = end
        assert not (start < len(head) < end), (atom, head)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["word", "de-fi", "中", "文", "$x$", "99%"]), min_size=60))
def test_excerpt_uses_most_of_its_budget(tokens: list[str]) -> None:
    """With short atoms, a cut keeps most of the budget (it never gives up early)."""
    text = " ".join(tokens)
    head = kept(excerpt(text, 40))
    assert grapheme_count(head) >= 30
