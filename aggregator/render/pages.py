"""The digest as static web pages.

- index.html, page/N/index.html: the digest, newest first, paginated;
- tags/index.html: every tag; tags/<slug>/index.html (and page/N/): a tag's entries.

Links between pages are relative and name index.html explicitly (404.html,
shown at any depth, links from the site root instead), so the
pages work from a web server and straight from the disk (file://) alike;
canonical and Open Graph URLs are the clean absolute ones under base_url.
Every page declares the Atom, RSS and JSON feeds for autodiscovery.

Entry links pass the URL policy again (render/entries.py): an entry whose
link is refused shows its title without a link. An entry that cannot be
written is left out of its page and reported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlsplit

from aggregator.config import SiteConfig
from aggregator.digest import Tag
from aggregator.model import DigestEntry, Page
from aggregator.render import environment
from aggregator.render.atom import FEED_PATH, public_url, tag_feed_path
from aggregator.render.entries import Rendered, for_readers, merge, skipping_unwritable
from aggregator.render.jsonfeed import JSON_PATH
from aggregator.render.rss import RSS_PATH
from aggregator.render.words import locale, words
from aggregator.slugs import tag_slug

TAGS_INDEX = "tags/index.html"
NOT_FOUND = "404.html"


@dataclass(frozen=True)
class FeedLink:
    """A feed a page declares (<link rel="alternate">) and links to."""

    title: str
    type: str
    href: str
    label: str


def page_path(number: int, prefix: str = "") -> str:
    """Where page `number` of a listing is written: prefix + index.html or page/N/index.html."""
    return f"{prefix}index.html" if number == 1 else f"{prefix}page/{number}/index.html"


def tag_prefix(slug: str) -> str:
    """The directory of a tag's pages, relative to the output dir."""
    return f"tags/{slug}/"


def relative(from_path: str, to_path: str) -> str:
    """A relative, percent-encoded link from the file `from_path` to the file `to_path`."""
    return "../" * from_path.count("/") + quote(to_path, safe="/")


def clean_url(site: SiteConfig, path: str) -> str:
    """The absolute URL of a page: its directory, without index.html."""
    return public_url(site, path.removesuffix("index.html"))


def site_root_href(site: SiteConfig, path: str) -> str:
    """A link to the output `path` from the site's root (/blog/tags/index.html), for
    a page served at any depth (the 404 page)."""
    root = urlsplit(site.base_url).path.rstrip("/") + "/"
    return quote(root + path, safe="/")


def render_not_found(site: SiteConfig) -> Rendered:
    """404.html: the page a server shows for an address the site does not have.

    Its links start at the site's root (the server shows it at whatever depth
    the reader asked for), so relative links would lead nowhere.
    """
    r = _Renderer(site, 0)
    heading = r.words["not_found"]
    context = r._context(
        NOT_FOUND,
        doc_title=f"{heading} · {site.title}",
        description=heading,
        heading=heading,
        section="none",
        canonical="",
        home_href=site_root_href(site, "index.html"),
        tags_href=site_root_href(site, TAGS_INDEX),
        feeds=[replace(f, href=site_root_href(site, p)) for f, p in
               zip(r._feeds(NOT_FOUND, None), (FEED_PATH, RSS_PATH, JSON_PATH), strict=True)],
    )  # fmt: skip
    html = environment().get_template("404.html").render(context)
    return Rendered({NOT_FOUND: html.encode("utf-8")})


def page_numbers(current: int, total: int, around: int = 2) -> list[int | None]:
    """The pagination bar: 1 2 … 7 8 9 … 20 (None is a gap).

    The first, the last and `around` pages either side of `current` are
    shown; a gap of a single page shows that page instead ("1 … 3" helps nobody).
    """
    keep = {1, total, *range(current - around, current + around + 1)}
    keep |= {n + 1 for n in keep if n + 2 in keep}
    numbers: list[int | None] = []
    for n in range(1, total + 1):
        if n in keep:
            numbers.append(n)
        elif numbers[-1] is not None:
            numbers.append(None)
    return numbers


def render_pages(
    pages: Sequence[Page],
    site: SiteConfig,
    tags: Sequence[tuple[Tag, Sequence[Page]]] = (),
    lead_count: int = 0,
) -> Rendered:
    """Render the digest pages, the tag index and every tag's pages."""
    r = _Renderer(site, lead_count)
    out: list[Rendered] = []
    for page in pages:
        path = page_path(page.number)
        title = site.title if page.number == 1 else f"{site.title} · {r.page_word(page.number)}"
        out.append(r.listing(path, page, "", title, site.subtitle, heading=None))
    out.append(Rendered({TAGS_INDEX: r.tag_index([t for t, _ in tags])}))
    for tag, tag_pages in tags:
        heading = r.words["tagged"].format(tag=tag.name)
        description = r.words["tag_description"].format(tag=tag.name)
        for page in tag_pages:
            path = page_path(page.number, tag_prefix(tag.slug))
            title = f"{heading} · {site.title}"
            if page.number > 1:
                title = f"{heading} · {r.page_word(page.number)} · {site.title}"
            out.append(
                r.listing(
                    path, page, tag_prefix(tag.slug), title, description, heading=heading, tag=tag
                )
            )
    return merge(*out)


class _Renderer:
    """The context every page shares, and the two kinds of page."""

    def __init__(self, site: SiteConfig, lead_count: int) -> None:
        self.site = site
        self.lead_count = lead_count
        self.words = words(site.language)
        self.locale = locale(site.language)

    def page_word(self, n: int) -> str:
        word = self.words["page"]
        return word.format(n=n) if "{n}" in word else f"{word} {n}"

    def _feeds(self, path: str, tag: Tag | None) -> list[FeedLink]:
        title = self.site.title
        feeds = [
            FeedLink(f"{title} (Atom)", "application/atom+xml", relative(path, FEED_PATH), "Atom"),
            FeedLink(f"{title} (RSS)", "application/rss+xml", relative(path, RSS_PATH), "RSS"),
            FeedLink(f"{title} (JSON Feed)", "application/feed+json",
                     relative(path, JSON_PATH), "JSON Feed"),
        ]  # fmt: skip
        if tag is not None:
            feeds.append(
                FeedLink(f"{title}: {tag.name} (Atom)", "application/atom+xml",
                         relative(path, tag_feed_path(tag.slug)), f"{tag.name} (Atom)")
            )  # fmt: skip
        return feeds

    def _context(self, path: str, **kw: Any) -> dict[str, Any]:
        return {
            "site": self.site,
            "tz": self.site.tz,
            "locale": self.locale,
            "og_locale": str(self.locale),
            "words": self.words,
            "canonical": clean_url(self.site, path),
            "home_href": relative(path, "index.html"),
            "tags_href": relative(path, TAGS_INDEX),
            "tag_href": self._tag_href(path),
            "lead_count": self.lead_count,
            # the language of the page's main text (a post's may differ from the site's)
            "page_lang": self.site.language,
            **kw,
        }

    @staticmethod
    def _tag_href(path: str) -> Callable[[str], str]:
        return lambda tag: relative(path, tag_prefix(tag_slug(tag)) + "index.html")

    def listing(
        self,
        path: str,
        page: Page,
        prefix: str,
        title: str,
        description: str,
        heading: str | None,
        tag: Tag | None = None,
    ) -> Rendered:
        def render(shown: Sequence[DigestEntry]) -> bytes:
            return self._listing(
                path, replace(page, entries=tuple(shown)), prefix, title, description, heading, tag
            )

        html, failures = skipping_unwritable(render, for_readers(page.entries), path)
        return Rendered({path: html}, failures)

    def _listing(
        self,
        path: str,
        page: Page,
        prefix: str,
        title: str,
        description: str,
        heading: str | None,
        tag: Tag | None,
    ) -> bytes:
        html = (
            environment()
            .get_template("page.html")
            .render(
                self._context(
                    path,
                    doc_title=title,
                    description=description,
                    heading=heading,
                    section="tags" if tag else "home",
                    feeds=self._feeds(path, tag),
                    page=page,
                    numbers=page_numbers(page.number, page.total),
                    page_href=lambda n: relative(path, page_path(n, prefix)),
                )
            )
        )
        return html.encode("utf-8")

    def tag_index(self, tags: Sequence[Tag]) -> bytes:
        heading = self.words["all_tags"]
        html = (
            environment()
            .get_template("tags.html")
            .render(
                self._context(
                    TAGS_INDEX,
                    doc_title=f"{heading} · {self.site.title}",
                    description=heading,
                    heading=heading,
                    section="tags",
                    feeds=self._feeds(TAGS_INDEX, None),
                    tags=sorted(tags, key=lambda t: (-len(t.entries), t.slug)),
                )
            )
        )
        return html.encode("utf-8")
