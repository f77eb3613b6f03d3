"""Feeds captured by other feed projects (tests/data/realworld, see its README),
served from a local server, ingested by aggregator, and compared with plain
feedparser reading the same bytes.

For every feed: the number of entries, and each entry's title and link. An
entry of feedparser's is paired with the stored entry of the same id (else the
same link, else the same title, else the next one left); every difference
must be one of the CAUSES below, each of which checks that it really applies
(a folded title must fold to the stored one, a dropped link must have been a
link the URL policy drops...). A difference no cause explains fails the test
as a bug. EXPLAINED is the table of what this corpus shows, cause by cause;
when aggregator changes what it keeps, the test prints the new table.
"""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import html as lxml_html
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator import pipeline
from aggregator.model import SourceResult
from aggregator.store import Store
from tests.integration.feedkit import make_config, opened
from tests.live_script import url_scheme

CORPUS = Path(__file__).resolve().parent.parent / "data" / "realworld"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TYPES = {
    ".atom": "application/atom+xml",
    ".rss": "application/rss+xml",
    ".rdf": "application/rdf+xml",
}
#: what xml_safe makes a space: what XML 1.0 cannot carry, and what HTML reads
#: as an error (DEL, C1 controls, noncharacters; live_script's rule)
_NOT_XML = re.compile(
    "[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufdcf\ufdf0-\ufffd\U00010000-\U0010ffff]"
    "|[\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0004fffe\U0004ffff"
    "\U0005fffe\U0005ffff\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
    "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
    "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)


def corpus_files() -> list[str]:
    """Every feed of the corpus, by its path under tests/data/realworld (SOURCES.tsv)."""
    with open(CORPUS / "SOURCES.tsv", encoding="utf-8", newline="") as f:
        return [row["file"] for row in csv.DictReader(f, delimiter="\t")]


@dataclass(frozen=True)
class Stored:
    guid: str
    title: str
    link: str
    text: str


@dataclass
class Ingested:
    urls: dict[str, str]
    results: dict[str, SourceResult]
    stored: dict[str, list[Stored]]
    max_entries: int


def stored_entries(store: Store) -> dict[str, list[Stored]]:
    """Source key -> every entry stored for it, shown or linked to another's copy."""
    shown = store.visible_entries(NOW)
    copies = [d for ds in store.duplicates_of([s.id for s in shown]).values() for d in ds]
    out: dict[str, list[Stored]] = defaultdict(list)
    for s in shown + copies:
        e = s.entry
        out[s.source.key].append(Stored(e.guid, e.title, e.link, e.text))
    return out


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingested]:
    files = corpus_files()

    def serve(request: Request) -> Response:
        rel = request.path.lstrip("/")
        if rel not in served:
            return Response("", status=404)
        return Response((CORPUS / rel).read_bytes(), content_type=content_type(rel))

    served = set(files)
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.expect_request(re.compile(r"/.*")).respond_with_handler(serve)
    server.start()
    try:
        urls = {rel: server.url_for("/" + rel) for rel in files}
        tmp = tmp_path_factory.mktemp("realworld")
        config = make_config(tmp, list(urls.values()), concurrency=16, per_host=16)
        with opened(config) as store:
            report = pipeline.ingest(config, store, NOW)
            stored = stored_entries(store)
    finally:
        server.stop()
    results = {r.source.key: r for r in report.results}
    yield Ingested(urls, results, stored, config.fetch.max_entries)


def content_type(rel: str) -> str:
    return TYPES.get(Path(rel).suffix, "application/xml")


# -- causes --------------------------------------------------------------------------


def fold(text: str) -> str:
    return " ".join(text.split())


def html_text(markup: str, *, code_ticks: bool = False) -> str:
    """The text of an HTML fragment; with `code_ticks`, inline code in backticks."""
    if not markup.strip():
        return ""
    root = lxml_html.fragment_fromstring(markup, create_parent="div")
    if code_ticks:
        for code in root.iter("code"):
            text = code.text_content()
            for child in list(code):
                code.remove(child)
            code.text = f"`{text}`"
    return str(root.text_content())


#: title causes: (name, applies(feedparser's entry, feedparser's title, stored entry))
TITLE_CAUSES: list[tuple[str, Callable[[Any, str, Stored], bool]]] = [
    ("white space in the title folded", lambda e, t, s: fold(t) == s.title),
    (
        "control characters in the title made spaces",
        lambda e, t, s: fold(_NOT_XML.sub(" ", t)) == s.title,
    ),
    (
        "HTML title read as text",
        lambda e, t, s: (
            "html" in (e.get("title_detail") or {}).get("type", "")
            and fold(html_text(t)) == s.title
        ),
    ),
    (
        "HTML title read as text, its inline code in backticks",
        lambda e, t, s: (
            "html" in (e.get("title_detail") or {}).get("type", "")
            and fold(html_text(t, code_ticks=True)) == s.title
        ),
    ),
    (
        "no title: the text's first words stand in",
        lambda e, t, s: (
            not fold(t)
            and (s.title == "(untitled)" or s.text.startswith(s.title.removesuffix("...")))
        ),
    ),
]

#: link causes: (name, applies(feed URL, feedparser's link, stored entry))
LINK_CAUSES: list[tuple[str, Callable[[str, str, Stored], bool]]] = [
    (
        # Mostly feedparser's fallback: an entry with no text/html alternate
        # link gets its id as link (urn:uuid:..., tag:...).
        "link not http(s) (urn:, tag:, at:): dropped by the URL policy",
        lambda u, link, s: url_scheme(link) not in ("http", "https", "") and s.link == "",
    ),
]

#: What this corpus shows: cause -> (feeds, entries). Counted by the test; a
#: change here is a change in what aggregator keeps of real feeds: look first.
EXPLAINED: dict[str, tuple[int, int]] = {
    "HTML title read as text": (29, 89),
    "HTML title read as text, its inline code in backticks": (1, 8),
    "control characters in the title made spaces": (4, 21),
    "link not http(s) (urn:, tag:, at:): dropped by the URL policy": (17, 21),
    "no title: the text's first words stand in": (281, 403),
    "the same entry twice, with no id or link: one entry": (5, 13),
    "the same id twice in the feed: one entry": (24, 53),
    "white space in the title folded": (18, 36),
}


def read_fields(e: Any) -> tuple[Any, ...]:
    """What aggregator reads of an entry (its extension elements, an enclosure's
    length... are not read): two entries alike in these are one entry to it."""
    return (
        *(dict.get(e, k) for k in ("id", "link", "title", "published", "updated")),
        *(dict.get(e, k) for k in ("summary", "author")),
        tuple(c.get("value") for c in e.get("content", [])),
        tuple((x.get("href"), x.get("type")) for x in e.get("enclosures", [])),
        tuple(t.get("term") for t in e.get("tags", [])),
    )


@dataclass
class Comparison:
    """What one feed's comparison found: differences explained by a cause, and not."""

    entries: int = 0
    stored: int = 0
    #: cause -> entries it explains
    explained: Counter[str] = field(default_factory=Counter)
    unexplained: list[str] = field(default_factory=list)


def compare(rel: str, url: str, ingested: Ingested) -> Comparison:
    body = (CORPUS / rel).read_bytes()
    parsed = feedparser.parse(
        body, response_headers={"content-location": url, "content-type": content_type(rel)}
    )
    theirs = list(parsed.entries)
    ours = list(ingested.stored.get(url, []))
    result = ingested.results[url]
    out = Comparison(entries=len(theirs), stored=len(ours))
    feed_failures = [f for f in result.failures if f.location == url]
    if feed_failures:
        if theirs:
            out.unexplained.append(
                f"{rel}: feed refused ({feed_failures[0].reason[:200]}) "
                f"but feedparser reads {len(theirs)} entries"
            )
        return out
    if len(theirs) > ingested.max_entries:
        out.explained["over max_entries: the first ones kept"] += len(theirs) - ingested.max_entries
        theirs = theirs[: ingested.max_entries]

    by_guid: dict[str, list[Stored]] = defaultdict(list)
    for s in ours:
        by_guid[s.guid].append(s)
    taken: set[int] = set()
    pairs: list[tuple[Any, Stored]] = []
    unpaired: list[Any] = []
    seen_keys: set[str] = set()

    def key_of(e: Any) -> str:
        for name in ("id", "link"):
            value = e.get(name)
            if isinstance(value, str) and value.strip():
                return _NOT_XML.sub(" ", value)
        return ""

    for e in theirs:
        key = key_of(e)
        match = next((s for s in by_guid.get(key, []) if id(s) not in taken), None) if key else None
        if match is not None:
            taken.add(id(match))
            pairs.append((e, match))
        elif key and key in seen_keys:
            out.explained["the same id twice in the feed: one entry"] += 1
        else:
            unpaired.append(e)
        if key:
            seen_keys.add(key)
    # Entries with neither id nor link: by title, then in order.
    rest = [s for s in ours if id(s) not in taken]
    for by_title in (True, False):
        left = []
        for e in unpaired:
            title = fold(e.get("title", ""))
            match = next((s for s in rest if s.title == title or not by_title), None)
            if match is None:
                left.append(e)
                continue
            rest.remove(match)
            pairs.append((e, match))
        unpaired = left
    paired = [read_fields(e) for e, _ in pairs]
    for e in unpaired:
        if read_fields(e) in paired:
            out.explained["the same entry twice, with no id or link: one entry"] += 1
        else:
            out.unexplained.append(f"{rel}: entry {e.get('title', '')[:60]!r} not stored")
    for s in rest:
        out.unexplained.append(f"{rel}: stored entry {s.title[:60]!r} not in feedparser's")

    for e, s in pairs:
        title = e.get("title", "")
        if title != s.title:
            cause = next((name for name, ok in TITLE_CAUSES if ok(e, title, s)), None)
            if cause:
                out.explained[cause] += 1
            else:
                out.unexplained.append(f"{rel}: title {title[:80]!r} stored as {s.title[:80]!r}")
        link = e.get("link", "")
        if link != s.link:
            cause = next((name for name, ok in LINK_CAUSES if ok(url, link, s)), None)
            if cause:
                out.explained[cause] += 1
            else:
                out.unexplained.append(f"{rel}: link {link[:80]!r} stored as {s.link[:80]!r}")
    return out


def test_every_difference_from_feedparser_is_explained(ingested: Ingested) -> None:
    files = corpus_files()
    assert len(files) > 900
    compared = {rel: compare(rel, ingested.urls[rel], ingested) for rel in files}
    unexplained = [u for c in compared.values() for u in c.unexplained]
    assert unexplained == [], f"{len(unexplained)} unexplained:\n" + "\n".join(unexplained[:60])

    feeds: dict[str, list[str]] = defaultdict(list)
    entries: Counter[str] = Counter()
    for rel, c in compared.items():
        for cause, n in c.explained.items():
            feeds[cause].append(rel)
            entries[cause] += n
    table = {cause: (len(feeds[cause]), entries[cause]) for cause in sorted(feeds)}
    read = [rel for rel in files if not any(f.location == ingested.urls[rel] for f in
            ingested.results[ingested.urls[rel]].failures)]  # fmt: skip
    print(
        f"\n{len(files)} feeds ({len(read)} read, {len(files) - len(read)} refused by both), "
        f"{sum(c.entries for c in compared.values())} entries by feedparser, "
        f"{sum(c.stored for c in compared.values())} stored"
    )
    for cause, (n_feeds, n_entries) in table.items():
        print(f"  {cause}: {n_feeds} feeds, {n_entries} entries")
    changed = {
        cause: f"{EXPLAINED.get(cause)} -> {table.get(cause)}: {sorted(feeds[cause])[:20]}"
        for cause in set(table) | set(EXPLAINED)
        if table.get(cause) != EXPLAINED.get(cause)
    }
    assert changed == {}, "the differences changed; if intended, update EXPLAINED:\n" + (
        "\n".join(f"{c}: {v}" for c, v in changed.items())
    )
