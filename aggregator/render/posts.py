"""A page for every one of the writer's own posts, at the post's permalink.

The digest, the feeds and the email link an own post to its permalink
(base_url + `[content] permalink`, percent-encoded); the page is written to
the file that URL names on the server: the path under base_url, decoded,
with index.html when it ends in "/". A permalink outside base_url, or one
naming no file under the output dir, gets no page and is reported.

A post page shows the whole stored content (already sanitized, its math
already MathML), images loading lazily, its tags linked to their tag pages,
"also in" for syndicated copies, the previous and next post, and a link
back to the digest. It is an h-entry (microformats2) and declares its
canonical URL, Open Graph and Twitter card meta.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from markupsafe import Markup

from aggregator.config import SiteConfig
from aggregator.model import DigestEntry, Failure, Page, SourceKind
from aggregator.render import environment
from aggregator.render.code import code_css, highlight_code
from aggregator.render.entries import Rendered, entry_location, for_readers
from aggregator.render.pages import _Renderer, relative

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")
#: the longest file name most file systems take, in bytes
_NAME_MAX = 255
_IMG = re.compile(r"<img\b(?![^>]*\sloading=)", re.IGNORECASE)
_FIRST_SRC = re.compile(r"<img\b[^>]*?\ssrc=\"([^\"]+)\"", re.IGNORECASE)


@dataclass(frozen=True)
class Neighbour:
    """The previous or next post, as the page links to it."""

    title: str
    href: str


def post_path(site: SiteConfig, link: str) -> str | None:
    """The file under the output dir that an own post's permalink names, or
    None when the link is not under base_url or names no file the build may
    write (outside the output dir, or a name too long for the file system)."""
    base = site.base_url.rstrip("/")
    if not link.startswith(base + "/"):
        return None
    rest = urlsplit(link[len(base) :])
    if rest.query or rest.fragment:
        return None
    rel = unquote(rest.path).lstrip("/")
    if rel == "" or rel.endswith("/"):
        rel += "index.html"
    parts = PurePosixPath(rel).parts
    if any(p in (".", "..") or len(p.encode("utf-8")) > _NAME_MAX for p in parts):
        return None
    if "\x00" in rel or "\\" in rel:
        return None
    return rel


def post_language(text: str, site_language: str) -> str:
    """The language a post is written in, between the site's and English/Chinese:
    Chinese when Han characters outnumber Latin words, else English.

    A stopgap until entries carry their own language (front matter `lang`,
    the feed's language): it keeps an English post on a Chinese site from
    being announced as Chinese, and the reverse.
    """
    han, latin = len(_HAN.findall(text)), len(_LATIN_WORD.findall(text))
    found = "zh" if han > latin else "en"
    return site_language if site_language.split("-")[0].lower() == found else found


def lazy_images(html: str) -> str:
    """Every <img> loading lazily (alt and the rest kept as they are)."""
    return _IMG.sub('<img loading="lazy"', html)


def first_image(html: str) -> str | None:
    """The address of the content's first image, for Open Graph and Twitter cards."""
    found = _FIRST_SRC.search(html)
    return found.group(1).replace("&amp;", "&") if found else None


def own_posts(pages: Sequence[Page]) -> list[DigestEntry]:
    """The writer's own posts among the digest's entries, newest first."""
    return [d for p in pages for d in p.entries if d.stored.source.kind == SourceKind.CONTENT]


def render_posts(pages: Sequence[Page], site: SiteConfig) -> Rendered:
    """A page per own post in the digest `pages`; the ones that cannot be written reported."""
    r = _Renderer(site, 0)
    posts = [d for d in for_readers(own_posts(pages)) if d.stored.entry.link]
    files: dict[str, bytes] = {}
    failures: list[Failure] = []
    placed: list[tuple[DigestEntry, str]] = []
    for d in posts:
        path = post_path(site, d.stored.entry.link)
        if path is None:
            failures.append(
                Failure(
                    entry_location(d.stored),
                    f"no post page: its permalink {d.stored.entry.link} names no file the build "
                    f"can write under base_url {site.base_url}",
                )
            )
            continue
        placed.append((d, path))
    for i, (d, path) in enumerate(placed):
        newer = placed[i - 1] if i > 0 else None
        older = placed[i + 1] if i + 1 < len(placed) else None
        try:
            files[path] = _post(r, d, path, newer, older)
        except Exception as e:  # one post that cannot be written is left out
            failures.append(
                Failure(entry_location(d.stored), f"left out of {path}: cannot be written ({e})")
            )
    return Rendered(files, tuple(failures))


def _post(
    r: _Renderer,
    d: DigestEntry,
    path: str,
    newer: tuple[DigestEntry, str] | None,
    older: tuple[DigestEntry, str] | None,
) -> bytes:
    e = d.stored.entry
    site = r.site

    def neighbour(n: tuple[DigestEntry, str] | None) -> Neighbour | None:
        return None if n is None else Neighbour(n[0].stored.entry.title, relative(path, n[1]))

    description = e.summary or d.excerpt
    content, has_code = highlight_code(lazy_images(e.content_html))
    html = (
        environment()
        .get_template("post.html")
        .render(
            r._context(
                path,
                doc_title=f"{e.title} · {site.title}",
                description=description,
                heading=e.title,
                section="post",
                feeds=r._feeds(path, None),
                canonical=e.link,
                og_type="article",
                og_title=e.title,
                og_image=first_image(e.content_html),
                page_lang=post_language(e.title + " " + e.text, site.language),
                post=d,
                content=Markup(content),
                code_css=Markup(code_css()) if has_code else "",
                newer=neighbour(newer),
                older=neighbour(older),
            )
        )
    )
    return html.encode("utf-8")
