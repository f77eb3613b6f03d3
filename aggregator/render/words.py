"""The words the outputs themselves say, by [site] language: the one table.

Pages, the email and the issue archive page all read their interface words
here, and their dates go through the same Babel locale, so a reader sees
one language everywhere. A language not in the table gets English words
(its dates are still in its own language when Babel knows it).
"""

from __future__ import annotations

from functools import cache

from babel import Locale, UnknownLocaleError

#: the outputs' own words, by language (the first subtag of [site] language).
#: A word with {n} that depends on a count has one entry per CLDR plural
#: category ("new_posts.one", "new_posts.other"); see count_words().
WORDS: dict[str, dict[str, str]] = {
    "en": {
        # web pages
        "skip": "Skip to the entries", "site_nav": "Site", "latest": "Latest",
        "tags": "Tags", "subscribe": "Subscribe", "feeds": "Feeds: ", "pages": "Pages",
        "previous": "Previous", "next": "Next", "page": "page", "also_in": "Also in: ",
        "empty": "Nothing here yet.", "all_tags": "All tags", "tagged": "Tagged “{tag}”",
        "tag_feed": "Subscribe to this tag", "tag_description": "Entries tagged “{tag}”",
        "post_nav": "More posts", "newer_post": "Newer post", "older_post": "Older post",
        "back_to_digest": "Back to the digest",
        "not_found": "Page not found",
        "not_found_text": "There is nothing at this address. It may have moved, or the link "
                          "may be mistyped. The latest entries are on the front page.",
        "to_front_page": "Go to the front page", "all_tags_link": "Browse every tag",
        # the email and the issue archive page
        "new_posts.one": "{n} new post", "new_posts.other": "{n} new posts",
        "preheader": "{count}: {titles}", "nothing_new": "Nothing new this time.",
        "more_in_archive.one": "{n} more in the web archive",
        "more_in_archive.other": "{n} more in the web archive",
        "view_in_browser": "View in browser", "unsubscribe": "Unsubscribe",
        "why_received": "You receive {title} because you subscribed to it. "
                        "One click on Unsubscribe stops it.",
        "issue_of": "the issue of {issue}", "label": "{label}: ",
    },
    "zh": {
        "skip": "跳到正文", "site_nav": "站点", "latest": "最新",
        "tags": "标签", "subscribe": "订阅", "feeds": "订阅源：", "pages": "分页",
        "previous": "上一页", "next": "下一页", "page": "第 {n} 页", "also_in": "亦见于：",
        "empty": "这里还没有内容。", "all_tags": "全部标签", "tagged": "标签：{tag}",
        "tag_feed": "订阅此标签", "tag_description": "标签为“{tag}”的文章",
        "post_nav": "更多文章", "newer_post": "较新的文章", "older_post": "较早的文章",
        "back_to_digest": "返回最新文章",
        "not_found": "找不到这个页面",
        "not_found_text": "这个地址上没有内容，可能已经移走，或者链接有误。最新的文章在首页。",
        "to_front_page": "回到首页", "all_tags_link": "浏览全部标签",
        "new_posts.other": "{n} 篇新文章",
        "preheader": "{count}：{titles}", "nothing_new": "这次没有新文章。",
        "more_in_archive.other": "网页存档里还有 {n} 篇",
        "view_in_browser": "在浏览器中查看", "unsubscribe": "退订",
        "why_received": "你收到 {title}，是因为你订阅了它。点一下“退订”即可停止。",
        "issue_of": "{issue} 期", "label": "{label}：",
    },
}  # fmt: skip


@cache
def locale(language: str) -> Locale:
    """The Babel locale of a [site] language (zh-CN, en); English if Babel does not know it."""
    try:
        return Locale.parse(language, sep="-")
    except (UnknownLocaleError, ValueError):
        return Locale.parse("en")


def words(language: str) -> dict[str, str]:
    """The interface words for a [site] language; English for a language not in the table."""
    return WORDS.get(language.split("-")[0].lower(), WORDS["en"])


def count_words(language: str, key: str, n: int) -> str:
    """A word that depends on a count, in the plural form `n` takes in `language`.

    count_words("en", "new_posts", 1) == "1 new post"; ("zh", ..., 3) == "3 篇新文章".
    """
    table = words(language)
    # the plural rules of the language the words are in (English when the
    # table lacks the site's language)
    known = language.split("-")[0].lower() in WORDS
    form = locale(language if known else "en").plural_form(n)
    return table.get(f"{key}.{form}", table[f"{key}.other"]).format(n=n)
