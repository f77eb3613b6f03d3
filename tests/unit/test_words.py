"""The one table of the outputs' own words: complete in every language, plurals right."""

from __future__ import annotations

import pytest

from aggregator.render.words import WORDS, count_words, locale, words


@pytest.mark.parametrize("language", sorted(set(WORDS) - {"en"}))
def test_every_language_says_everything_english_says(language: str) -> None:
    def bases(table: dict[str, str]) -> set[str]:
        # a counted word needs its "other" form; "one" and the rest are optional
        return {k.split(".")[0] for k in table}

    assert bases(WORDS[language]) == bases(WORDS["en"])
    for key in WORDS[language]:
        if "." in key:
            assert f"{key.split('.')[0]}.other" in WORDS[language]


def test_counts_take_the_plural_of_the_language() -> None:
    assert count_words("en", "new_posts", 1) == "1 new post"
    assert count_words("en", "new_posts", 0) == "0 new posts"
    assert count_words("en-GB", "new_posts", 12) == "12 new posts"
    assert count_words("zh-CN", "new_posts", 1) == "1 篇新文章"
    assert count_words("zh-Hant-TW", "more_in_archive", 7) == "网页存档里还有 7 篇"


def test_a_language_not_in_the_table_gets_english_words_and_english_plurals() -> None:
    # French calls 0 singular; the words are English, so English rules apply
    assert words("fr-FR") is WORDS["en"]
    assert count_words("fr-FR", "new_posts", 0) == "0 new posts"
    assert str(locale("fr-FR")) == "fr_FR"  # dates are still French
    assert str(locale("not a language")) == "en"
