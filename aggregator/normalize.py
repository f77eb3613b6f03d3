"""RawItem -> Entry: one shape for every source. Pure, no IO.

The guid rule, the canonical link, UTC dates, sanitized HTML with absolute
links, plain text and the hashes that tell an edit from a re-fetch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from aggregator.errors import NormalizeError
from aggregator.fingerprint import text_identity
from aggregator.model import Entry, RawItem
from aggregator.text import first_words, fold_space, html_to_text, sanitize_html, xml_safe
from aggregator.urls import canonical_url

#: bump when the hashed fields change, so old hashes are recomputed, not compared
HASH_VERSION = 1


def normalize(
    item: RawItem,
    base_url: str,
    now: datetime,
    *,
    allow_future: bool = False,
    code_placeholder: str = "[code]",
    tracking_params: Sequence[str] = (),
) -> Entry:
    """Normalize one item; `base_url` resolves relative links (feed or page URL).

    A feed's future dates are clamped to `now`; the writer's own posts pass
    `allow_future`, so a post dated ahead appears when its time comes (the
    store shows only entries published by `now`). `code_placeholder` stands
    for a code block in the plain text. `tracking_params` are query parameters
    dropped from the canonical URL in addition to urls.TRACKING_PARAMS
    (config [dedupe] tracking_params).
    """
    # Every string is made XML-safe first: one control character from a feed
    # would otherwise make lxml refuse the text, and later every output.
    content_html = sanitize_html(
        xml_safe(item.content_html), item.base_url or item.link or base_url
    )
    text = html_to_text(content_html, code_placeholder)
    title = fold_space(xml_safe(item.title or "")) or first_words(text) or "(untitled)"
    link = xml_safe(item.link or "")
    canonical_link = xml_safe(item.canonical_link or "")
    published = _utc(item.published) or _utc(item.updated) or now
    updated = _utc(item.updated) or published
    if not allow_future:
        # A feed may claim the future; an entry cannot have been written after now.
        published = min(published, now)
        updated = min(updated, now)
    updated = max(updated, published)
    guid = xml_safe(item.guid or "") or link or _hash("guid", title, published.isoformat(), text)
    if not guid:
        raise NormalizeError(f"{item.location}: entry has no id, link or content")
    tags = tuple(dict.fromkeys(t for t in (fold_space(xml_safe(t)) for t in item.tags) if t))
    summary = fold_space(xml_safe(item.summary)) if item.summary else None
    fingerprint, lsh = text_identity(text)
    return Entry(
        guid=guid,
        title=title,
        link=link,
        canonical_url=canonical_url(canonical_link or link, tracking_params)
        if (canonical_link or link)
        else "",
        published=published,
        updated=updated,
        author=fold_space(xml_safe(item.author or "")),
        content_html=content_html,
        text=text,
        summary=summary,
        tags=tags,
        content_hash=_hash(str(HASH_VERSION), title, link, content_html, summary or "", *tags),
        fingerprint=fingerprint,
        lsh=lsh,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _hash(*parts: str) -> str:
    return hashlib.sha256(_JSON.encode(parts).encode()).hexdigest()[:32]


#: json.dumps(..., ensure_ascii=False) without building an encoder per call
_JSON = json.JSONEncoder(ensure_ascii=False)
