"""RawItem -> Entry: one shape for every source. Pure, no IO.

The guid rule, the canonical link, UTC dates, sanitized HTML with absolute
links, plain text and the hashes that tell an edit from a re-fetch.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aggregator.errors import NormalizeError
from aggregator.fingerprint import text_identity
from aggregator.model import Entry, FeedMeta, GuidRow, RawItem
from aggregator.text import first_words, fold_space, html_to_text, sanitize_html, xml_safe
from aggregator.urls import canonical_url, check_public_url, public_url

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
    notes: list[str] | None = None,
) -> Entry:
    """Normalize one item; `base_url` resolves relative links (feed or page URL).

    A feed's future dates are clamped to `now`; the writer's own posts pass
    `allow_future`, so a post dated ahead appears when its time comes (the
    store shows only entries published by `now`). `code_placeholder` stands
    for a code block in the plain text. `tracking_params` are query parameters
    dropped from the canonical URL in addition to urls.TRACKING_PARAMS
    (config [dedupe] tracking_params). What sanitizing cut from content too
    deeply nested is said in `notes` (text.sanitize_html).
    """
    # Every string is made XML-safe first: one control character from a feed
    # would otherwise make lxml refuse the text, and later every output.
    # The link readers are shown passes the URL policy (urls.check_public_url);
    # the item's link as written still names it (its guid, its canonical URL).
    link = xml_safe(item.link or "")
    shown_link = public_url(link, base_url) or ""
    content_html = sanitize_html(
        xml_safe(item.content_html), item.base_url or shown_link or base_url, notes=notes
    )
    text = html_to_text(content_html, code_placeholder)
    title = fold_space(xml_safe(item.title or "")) or first_words(text) or "(untitled)"
    canonical_link = xml_safe(item.canonical_link or "")
    published = _utc(item.published) or _utc(item.updated) or now
    updated = _utc(item.updated) or published
    if not allow_future:
        # A feed may claim the future; an entry cannot have been written after now.
        published = min(published, now)
        updated = min(updated, now)
    updated = max(updated, published)
    guid = xml_safe(item.guid or "") or link or derived_guid(item)
    if not guid:
        raise NormalizeError(f"{item.location}: entry has no id, link or content")
    tags = tuple(dict.fromkeys(t for t in (fold_space(xml_safe(t)) for t in item.tags) if t))
    summary = fold_space(xml_safe(item.summary)) if item.summary else None
    fingerprint, lsh = text_identity(text)
    return Entry(
        guid=guid,
        title=title,
        link=shown_link,
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
        content_hash=_hash(
            str(HASH_VERSION), title, shown_link, content_html, summary or "", *tags
        ),
        fingerprint=fingerprint,
        lsh=lsh,
    )


def feed_meta(
    feed_id: str | None, title: str | None, link: str | None, base_url: str
) -> tuple[FeedMeta, str | None]:
    """What a feed says about itself, as our feeds show it (atom:source, via):
    its link passed through the URL policy; and why the link was refused, if it was."""
    check = check_public_url(xml_safe(link) if link else None, base_url)
    meta = FeedMeta(
        id=xml_safe(feed_id) if feed_id else None,
        title=fold_space(xml_safe(title)) or None if title else None,
        link=check.url,
    )
    return meta, check.reason


def refused_links(items: Sequence[RawItem], base_url: str) -> list[str]:
    """Why each item link readers will not be shown was refused (the URL policy)."""
    reasons = []
    for item in items:
        if item.link:
            reason = check_public_url(xml_safe(item.link), base_url).reason
            if reason:
                reasons.append(reason)
    return reasons


def refusals_warning(reasons: Sequence[str], what: str = "link") -> str | None:
    """One line for a feed's result saying which links were left out, and why."""
    if not reasons:
        return None
    counts = Counter(reasons)
    why = "; ".join(f"{r} ({n}x)" if n > 1 else r for r, n in counts.most_common(3))
    if len(counts) > 3:
        why += f"; and {len(counts) - 3} other reasons"
    n = len(reasons)
    return f"left out {n} {what}{'s' if n > 1 else ''} not shown to readers: {why}"


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


# -- the identity of an item with no id and no link ------------------------------
# Such an item is known only by what it says. Its guid is derived from that,
# never from where it sits in the feed or when it was read: an item keeps its
# guid when others are added, removed or moved around it, and when its feed is
# read again after a crash. Two items saying exactly the same thing are one.
#
# Version 1 (until 2026-11) hashed the title, the published date and the plain
# text; an undated item's date was the time of reading, so its guid changed
# each time its feed changed (one item, several rows, shown several times).
# Version 2 hashes the item's own words: title, author, the date the feed
# gives (if any), and the body and summary as the feed sent them (enclosure
# links included); the result is marked "derived:2:", so a later version can
# tell its rows from ours. Rows stored under version 1 are taken over by
# adopt_guids when their item is read again, so nothing shows twice after the
# upgrade.

#: what a derived guid is made of; bump it (and teach adopt_guids the old
#: form) when that changes
GUID_VERSION = 2
DERIVED_GUID_PREFIX = f"derived:{GUID_VERSION}:"
#: version 1's guids: 32 hex digits, with no link stored beside them
_V1_GUID = re.compile(r"[0-9a-f]{32}")


def derived_guid(item: RawItem) -> str:
    """The guid of an item with no id and no link, from what it says (see above)."""
    published = _utc(item.published)
    return DERIVED_GUID_PREFIX + _hash(
        "item",
        _words(item.title),
        _words(item.author),
        published.isoformat() if published else "",
        _words(item.content_html),
        _words(item.summary),
    )


def is_derived(guid: str) -> bool:
    """Whether `guid` was derived by this version of derived_guid."""
    return guid.startswith(DERIVED_GUID_PREFIX)


@dataclass(frozen=True)
class GuidAdoption:
    """What adopt_guids decided: stored rows to re-key, and rows to hide."""

    #: (row id, the derived guid its item has now): the row keeps its id,
    #: first_seen and links, under the new guid
    renames: tuple[tuple[int, str], ...] = ()
    #: further rows of an item already adopted (the copies version 1 made):
    #: marked gone, kept
    gone: tuple[int, ...] = ()


def adopt_guids(batch: Sequence[Entry], stored: Sequence[GuidRow]) -> GuidAdoption:
    """Map rows stored under a version-1 guid onto the entries of `batch` that
    now carry a derived guid.

    `stored` is the source's link-less rows with the titles of `batch`'s
    derived entries. A version-1 row is one item's if it has the item's title
    and its text (whitespace aside) or, should the text have been made
    differently since, its text fingerprint. A row two entries could both
    claim goes to the one whose published date it has, or to neither. Of the
    rows of one item, the oldest is renamed to the derived guid (unless a row
    already carries it) and the others, copies the old derivation made, are
    marked gone. Rows under a derived guid, or a guid of the source's own, are
    left alone; so is a version-1 row whose item is no longer in the feed
    (nothing arrives to show it twice).
    """
    entries = list({e.guid: e for e in reversed(batch) if is_derived(e.guid)}.values())
    if not entries:
        return GuidAdoption()
    have = {r.guid for r in stored}
    legacy: dict[str, list[GuidRow]] = defaultdict(list)
    for r in sorted(stored, key=lambda r: r.id):
        if _V1_GUID.fullmatch(r.guid):
            legacy[r.title].append(r)
    candidates = {e.guid: [r for r in legacy.get(e.title, []) if _same_item(r, e)] for e in entries}
    claims = Counter(r.id for rows in candidates.values() for r in rows)
    renames: list[tuple[int, str]] = []
    gone: list[int] = []
    taken: set[int] = set()
    for e in entries:
        rows = [r for r in candidates[e.guid] if r.id not in taken]
        mine = [r for r in rows if r.published == e.published] or [
            r for r in rows if claims[r.id] == 1
        ]
        if not mine:
            continue
        taken.update(r.id for r in mine)
        if e.guid in have:
            gone += [r.id for r in mine]
        else:
            renames.append((mine[0].id, e.guid))
            gone += [r.id for r in mine[1:]]
    return GuidAdoption(tuple(renames), tuple(gone))


def _same_item(row: GuidRow, entry: Entry) -> bool:
    """A stored row and an entry with one title: the same words?"""
    if _squeeze(row.text) == _squeeze(entry.text):
        return True
    return bool(entry.fingerprint) and row.fingerprint == entry.fingerprint


def _words(value: str | None) -> str:
    """`value` with its runs of whitespace made one space (a feed re-indented
    says the same thing)."""
    return " ".join(value.split()) if value else ""


def _squeeze(text: str) -> str:
    return "".join(text.split())
