"""Slugs for tags: the file and URL name of a tag's page and feed. Pure, no IO.

A slug keeps the tag readable in its own script (机器学习 stays 机器学习,
"Deep Learning" becomes deep-learning): links to it are percent-encoded by
`slug_href`. It is safe as one path segment on every common file system and
server: only Unicode letters, digits and single hyphens; no dot, slash,
backslash or control character; never empty, never longer than MAX_LENGTH.
The same tag always gives the same slug (stable across runs and machines:
only `unicodedata` tables, no locale). Tags differing only in case, width or
punctuation share a slug, and so share a page: that is intended.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import quote

#: the longest slug, in characters (a UTF-8 CJK slug is then at most 180 bytes)
MAX_LENGTH = 60

_NOT_WORD = re.compile(r"[\W_]+")


def tag_slug(tag: str) -> str:
    """The slug of `tag`: `Deep Learning` -> `deep-learning`, `机器学习` -> `机器学习`.

    A tag with no letter or digit (`+++`), or one cut at MAX_LENGTH, gets a
    short hash of the tag in its slug, so such tags still stay apart.
    """
    folded = unicodedata.normalize("NFKC", tag).casefold()
    slug = _NOT_WORD.sub("-", folded).strip("-")
    digest = hashlib.sha1(folded.encode("utf-8")).hexdigest()[:8]
    if not slug:
        return f"tag-{digest}"
    if len(slug) > MAX_LENGTH:
        return slug[: MAX_LENGTH - 9].rstrip("-") + "-" + digest
    return slug


def slug_href(slug: str) -> str:
    """`slug` as a URL path segment: non-ASCII is percent-encoded UTF-8."""
    return quote(slug, safe="")
