from __future__ import annotations

from aggregator import fingerprint as fp

WORDS = " ".join(f"w{i} alpha beta" for i in range(40))


def test_boilerplate_is_stripped_only_at_the_ends() -> None:
    text = "Real words here. The post Real appeared first on Some Blog."
    assert fp.strip_boilerplate(text) == "Real words here."
    inside = "Read more books. It was first published in 1998, then forgotten."
    assert fp.strip_boilerplate(inside) == inside


def test_fingerprint_ignores_case_punctuation_and_boilerplate() -> None:
    a = "It’s “quoted” text — with enough words to count as an article body, truly long enough."
    b = (
        'it\'s "QUOTED" text - with enough words to count as an article body, truly long enough.'
        " Continue reading →"
    )
    assert fp.text_fingerprint(a) == fp.text_fingerprint(b) != ""
    assert fp.text_fingerprint("Too short to identify.") == ""


def test_cjk_is_tokenized_by_character() -> None:
    assert fp.tokens("学习Rust的第三个月") == ["学", "习", "rust", "的", "第", "三", "个", "月"]
    assert fp.weight(fp.tokens("学习")) == 1.0


def test_near_score_needs_length_similarity_and_no_replaced_passage() -> None:
    a = fp.Prepared(WORDS)
    assert fp.near_score(a, fp.Prepared(WORDS + " one more"), 0.8, 50, 12) is not None
    short = fp.Prepared("just a few words here")
    assert fp.near_score(short, short, 0.8, 50, 12) is None
    replaced = WORDS.replace(
        "w20 alpha beta w21 alpha beta w22 alpha beta w23 alpha beta w24 alpha beta",
        "entirely different words that replace one whole passage of the original text here",
    )
    assert fp.longest_replaced(a.tokens, fp.Prepared(replaced).tokens) > 12
    assert fp.near_score(a, fp.Prepared(replaced), 0.5, 50, 12) is None


def test_lsh_keys_are_stable_and_shared_by_near_copies() -> None:
    keys = fp.lsh_keys(WORDS, 50)
    assert keys == fp.lsh_keys(WORDS, 50) and len(keys) == fp.BANDS
    assert set(keys) & set(fp.lsh_keys(WORDS + " and a tail", 50))
    assert fp.lsh_keys("too short", 50) == []
