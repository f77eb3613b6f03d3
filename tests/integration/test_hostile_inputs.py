"""The big list of naughty strings and OWASP's XSS filter-evasion vectors, through
every field of a feed item and of a Markdown post, then through every output.

Each string goes into a feed item's title, link, content, summary, author,
category and enclosure (Atom and RSS, the feed's own title and link too), and
into a post's title, tags, body, summary and slug. One ingest from a real local
HTTP server, one build, one send to a real SMTP server (aiosmtpd); then every
output must have been written, parse (lxml for XML, html5lib for HTML, json),
and hold no live script (tests/live_script.py says what that is).

Strings with characters XML 1.0 forbids go into feeds of their own, which are
then ill-formed and read by feedparser's loose parser, as a careless or hostile
publisher's feed would be; the others into well-formed feeds. The data and its
licences: tests/data/hostile/README.md.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import TypeVar
from xml.sax.saxutils import escape, quoteattr

import pytest
import yaml
from pytest_httpserver import HTTPServer

from aggregator import config as config_mod
from aggregator import newsletter, pipeline
from aggregator.config import Config
from aggregator.model import IngestReport, SourceResult
from aggregator.store import Store
from tests.integration.feedkit import opened
from tests.live_script import (
    feed_problems,
    html_problems,
    json_feed_problems,
    message_problems,
    script_url,
    text_problems,
)
from tests.smtp_server import SmtpServer, serve

DATA = Path(__file__).resolve().parent.parent / "data" / "hostile"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
#: inside the issue window of NOW (2026-W47), so every entry reaches the email
WHEN = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
#: strings per feed: few feeds, many items
BATCH = 60
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
READER = "reader@example.com"
T = TypeVar("T")


def naughty_strings() -> list[str]:
    """The big list of naughty strings, then OWASP's vectors, in file order."""
    blns = json.loads((DATA / "blns.json").read_text(encoding="utf-8"))
    owasp = json.loads((DATA / "owasp-xss-vectors.json").read_text(encoding="utf-8"))
    return [*blns, *(v["vector"] for v in owasp)]


def _bytes(text: str) -> bytes:
    # A lone surrogate (blns has none today) is written as a broken UTF-8 sequence,
    # as a broken publisher would.
    return text.encode("utf-8", "surrogatepass")


def atom_feed(strings: list[tuple[int, str]], title: str, link: str) -> bytes:
    """An Atom feed with one entry per string, the string in every field."""
    entries = []
    for k, s in strings:
        # Both kinds of Atom text: the title as text and as HTML, in turns; the
        # content and summary as HTML, each alone or together.
        title_type = "html" if k % 2 else "text"
        content = f'<content type="html">{escape(s)}</content>' if k % 3 else ""
        summary = f'<summary type="html">{escape(s)}</summary>' if k % 3 != 1 else ""
        entries.append(
            f"<entry><id>urn:naughty:atom:{k}</id>"
            f'<title type="{title_type}">{escape(s)}</title>'
            f'<link rel="alternate" href={quoteattr(s)}/>'
            f'<link rel="enclosure" href={quoteattr(s)} type="audio/mpeg" length="1"/>'
            f"<updated>{WHEN.isoformat()}</updated>"
            f"<author><name>{escape(s)}</name><uri>{escape(s)}</uri></author>"
            f"<category term={quoteattr(s)}/>{summary}{content}</entry>"
        )
    return _bytes(
        '<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        f"<id>urn:naughty:feed</id><title>{escape(title)}</title>"
        f'<link rel="alternate" href={quoteattr(link)}/>'
        f"<updated>{WHEN.isoformat()}</updated>" + "".join(entries) + "</feed>"
    )


def rss_feed(strings: list[tuple[int, str]], title: str, link: str) -> bytes:
    """An RSS 2.0 feed with one item per string, the string in every field."""
    date = "Fri, 20 Nov 2026 10:00:00 +0000"
    items = []
    for k, s in strings:
        encoded = f"<content:encoded>{escape(s)}</content:encoded>" if k % 2 else ""
        items.append(
            f'<item><guid isPermaLink="false">urn:naughty:rss:{k}</guid>'
            f"<title>{escape(s)}</title><link>{escape(s)}</link>"
            f"<description>{escape(s)}</description>{encoded}"
            f"<author>{escape(s)}</author><dc:creator>{escape(s)}</dc:creator>"
            f"<category>{escape(s)}</category><comments>{escape(s)}</comments>"
            f'<enclosure url={quoteattr(s)} type="audio/mpeg" length="1"/>'
            f"<pubDate>{date}</pubDate></item>"
        )
    return _bytes(
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
        f"<title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<description>{escape(title)}</description>" + "".join(items) + "</channel></rss>"
    )


def post_text(s: str) -> str:
    """A Markdown post with `s` as its title, slug, summary, a tag and its body.

    Front matter values are YAML double-quoted strings, written by PyYAML: any
    string can be written so, with escapes for what YAML cannot carry raw."""
    q = yaml.safe_dump(s, default_style='"', allow_unicode=True, width=1 << 30).rstrip("\n")
    return (
        f"---\ntitle: {q}\nslug: {q}\nsummary: {q}\ntags: [{q}, naughty]\n"
        f"date: {WHEN.isoformat()}\n---\n\n{s}\n\nafter the string\n"
    )


@dataclass
class Site:
    """One hostile site: what went in, and what ingest, build and send made of it."""

    root: Path
    config: Config
    strings: list[str]
    #: feed URL -> the indices of the strings its items carry
    feeds: dict[str, list[int]]
    report: IngestReport | None = None
    errors: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, bytes] = field(default_factory=dict)
    messages: list[bytes] = field(default_factory=list)
    #: every file under root after the build (to find one written outside public/)
    files_after: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    #: source key -> guids stored for it (visible and linked copies)
    stored: dict[str, set[str]] = field(default_factory=dict)
    #: entries the digest shows
    visible: int = 0

    def result(self, key: str) -> SourceResult:
        assert self.report is not None, self.errors.get("ingest")
        (r,) = [r for r in self.report.results if r.source.key == key]
        return r


def make_site(root: Path, smtp: SmtpServer, urls: list[str]) -> Config:
    (root / "content").mkdir(exist_ok=True)
    data = {
        "site": {"base_url": "https://digest.example.org/", "title": "Naughty digest"},
        "content": {"dir": "content"},
        "feeds": [{"url": u} for u in urls],
        "database": {"url": "sqlite:///data/test.db"},
        "output": {"dir": "public"},
        "digest": {"page_size": 100},
        "email": {
            "from": "digest@example.org",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "rate_limit": 0.0,
            "retry_backoff": 0.01,
            "max_age_days": 30,
        },
        "subscribers": [{"email": READER, "name": "Reader"}],
        "fetch": {"concurrency": 8, "per_host": 8},
    }
    return config_mod.parse(data, root / "config.toml")


def _attempt(site: Site, step: str, fn: Callable[[], T]) -> T | None:
    """fn(), its exception kept in site.errors[step] and its time in site.seconds."""
    started = time.monotonic()
    try:
        return fn()
    except Exception:
        site.errors[step] = traceback.format_exc()
        return None
    finally:
        site.seconds[step] = time.monotonic() - started


@pytest.fixture(scope="module")
def feed_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The strings in feed items, and no posts."""
    return hostile_site(tmp_path_factory.mktemp("naughty-feeds"), feeds=True)


@pytest.fixture(scope="module")
def post_site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """The strings in posts, and no feeds."""
    return hostile_site(tmp_path_factory.mktemp("naughty-posts"), feeds=False)


@pytest.fixture(params=["feeds", "posts"])
def site(request: pytest.FixtureRequest) -> Site:
    """Each of the two sites: one apart from the other, so a failure in one does
    not hide what the other shows."""
    made = request.getfixturevalue(f"{request.param[:-1]}_site")
    assert isinstance(made, Site)
    return made


def hostile_site(root: Path, *, feeds: bool) -> Site:
    """Write the posts or serve the feeds; ingest, build and send once, keeping
    each step's exception rather than stopping at it."""
    (root / "content").mkdir()
    strings = naughty_strings()
    bodies: dict[str, tuple[bytes, list[int]]] = {}
    if feeds:
        bodies = feed_bodies(strings)
    else:
        for k, s in enumerate(strings):
            (root / "content" / f"post-{k:04d}.md").write_bytes(_bytes(post_text(s)))

    server = HTTPServer(host="127.0.0.1", threaded=True)
    for path, (body, _) in bodies.items():
        kind = "application/atom+xml" if path.endswith(".atom") else "application/rss+xml"
        server.expect_request(path).respond_with_data(body, content_type=kind)
    server.start()
    with contextlib.contextmanager(serve)() as smtp:
        try:
            config = make_site(root, smtp, [server.url_for(p) for p in bodies])
            served = {server.url_for(p): ids for p, (_, ids) in bodies.items()}
            hostile = Site(root, config, strings, served)
            with opened(config) as store:
                hostile.report = _attempt(
                    hostile, "ingest", lambda: pipeline.ingest(config, store, NOW)
                )
                hostile.stored = stored_guids(store)
                hostile.visible = len(store.visible_entries(NOW))
                _attempt(hostile, "build", lambda: pipeline.build(config, store, NOW))
                _attempt(hostile, "send", lambda: newsletter.send(config, store, NOW))
        finally:
            server.stop()
        hostile.messages = [r.data for r in smtp.handler.received]
    public = config.output.dir
    hostile.outputs = {
        p.relative_to(public).as_posix(): p.read_bytes()
        for p in public.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }
    hostile.files_after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
    return hostile


def feed_bodies(strings: list[str]) -> dict[str, tuple[bytes, list[int]]]:
    """URL path -> (feed body, indices of the strings in it): Atom and RSS feeds
    of BATCH strings each, XML-clean strings and the others apart."""
    clean = [(k, s) for k, s in enumerate(strings) if not _NOT_XML_CHAR.search(s)]
    dirty = [(k, s) for k, s in enumerate(strings) if _NOT_XML_CHAR.search(s)]
    bodies = {}
    for group, name in ((clean, "clean"), (dirty, "dirty")):
        for n, start in enumerate(range(0, len(group), BATCH)):
            chunk = group[start : start + BATCH]
            # The feed's own title and link are naughty strings too.
            title, link = strings[(n * 7) % len(strings)], strings[(n * 7 + 3) % len(strings)]
            ids = [k for k, _ in chunk]
            bodies[f"/{name}-{n}.atom"] = (atom_feed(chunk, title, link), ids)
            bodies[f"/{name}-{n}.rss"] = (rss_feed(chunk, title, link), ids)
    return bodies


def stored_guids(store: Store) -> dict[str, set[str]]:
    """Source key -> guids stored for it, shown or linked to another source's copy."""
    shown = store.visible_entries(NOW)
    copies = [d for ds in store.duplicates_of([s.id for s in shown]).values() for d in ds]
    out: dict[str, set[str]] = {}
    for s in shown + copies:
        out.setdefault(s.source.key, set()).add(s.entry.guid)
    return out


def _no_error(site: Site, *steps: str) -> None:
    for step in steps:
        assert step not in site.errors, f"{step} raised:\n{site.errors[step]}"


# -- ingest ---------------------------------------------------------------------------


def test_every_naughty_feed_item_is_stored(feed_site: Site) -> None:
    site = feed_site
    _no_error(site, "ingest")
    problems = []
    for url, ids in site.feeds.items():
        r = site.result(url)
        kind = "atom" if url.endswith(".atom") else "rss"
        expected = {f"urn:naughty:{kind}:{k}" for k in ids}
        missing = expected - site.stored.get(url, set())
        if r.failures or missing:
            shown = sorted(missing, key=lambda g: int(g.rsplit(":", 1)[1]))[:5]
            problems.append(
                f"{url}: {len(missing)} of {len(ids)} items not stored (e.g. "
                f"{[site.strings[int(g.rsplit(':', 1)[1])][:40] for g in shown]}); "
                f"failures: {[str(f)[:200] for f in r.failures[:3]]}"
            )
    assert problems == []
    assert sum(len(ids) for ids in site.feeds.values()) == 2 * len(site.strings)


def test_every_naughty_post_is_stored_or_named_in_a_clear_failure(post_site: Site) -> None:
    site = post_site
    _no_error(site, "ingest")
    content = site.result(site.config.content_source.key)
    stored = len(site.stored.get(site.config.content_source.key, set()))
    failed_files = {re.sub(r":\d+$", "", f.location).rsplit("/", 1)[-1] for f in content.failures}
    unexplained = [
        str(f)[:300]
        for f in content.failures
        if "post-" not in f.location or "internal error" in f.reason or "Traceback" in f.reason
    ]
    assert unexplained == []
    # Every post is either stored or named by a failure; most are stored (a slug
    # that is empty, or the same as another post's, is a clear failure).
    assert stored + len(failed_files) >= len(site.strings)
    assert stored > 0.9 * len(site.strings), [str(f)[:200] for f in content.failures[:20]]


# -- build and outputs ----------------------------------------------------------------


def test_build_writes_every_output_and_nothing_outside_the_output_dir(site: Site) -> None:
    _no_error(site, "build")
    for name in ("index.html", "feed.atom", "rss.xml", "feed.json", "email.html", "email.txt"):
        assert name in site.outputs
    assert any(n.startswith("tags/") and n.endswith("/index.html") for n in site.outputs)
    assert any(n.startswith("tags/") and n.endswith(".atom") for n in site.outputs)
    outside = [
        f
        for f in site.files_after
        if f.split("/")[0] not in ("public", "content", "data", "config.toml")
    ]
    assert outside == []


def test_every_feed_output_is_well_formed_and_holds_no_live_script(site: Site) -> None:
    _no_error(site, "build")
    feeds = {n: d for n, d in site.outputs.items() if n.endswith((".atom", ".xml"))}
    assert len(feeds) > 10
    problems = [p for n, d in sorted(feeds.items()) for p in feed_problems(d, n)]
    assert problems == [], f"{len(problems)} problems, e.g.\n" + "\n".join(problems[:40])


def test_the_json_feed_is_valid_and_holds_no_live_script(site: Site) -> None:
    _no_error(site, "build")
    assert len(json.loads(site.outputs["feed.json"])["items"]) > 10
    problems = json_feed_problems(site.outputs["feed.json"], "feed.json")
    assert problems == [], f"{len(problems)} problems, e.g.\n" + "\n".join(problems[:40])


def test_every_page_parses_and_holds_no_live_script(site: Site) -> None:
    _no_error(site, "build")
    pages = {n: d for n, d in site.outputs.items() if n.endswith(".html") and n != "email.html"}
    assert len(pages) > 10
    problems = [p for n, d in sorted(pages.items()) for p in html_problems(d, n)]
    assert problems == [], f"{len(problems)} problems, e.g.\n" + "\n".join(problems[:40])
    # Not clean by being empty: the digest shows every naughty entry it keeps.
    shown = b"".join(d for n, d in pages.items() if n == "index.html" or n.startswith("page/"))
    assert site.visible > 0.5 * len(site.strings)
    assert shown.count(b'class="entry-title"') == site.visible


def link_lines(text: str) -> list[str]:
    """The link line of each entry in email.txt (see templates/email.txt): an
    entry starts with "N. title"; its last line before the blank that ends it
    is "   <link>"."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if re.match(r"\d+\. ", line)]
    links = []
    for start in starts:
        end = start + 1
        while end < len(lines) and (lines[end] == "" or lines[end].startswith("   ")):
            end += 1
        block = lines[start:end]
        while block and block[-1] == "":
            block.pop()
        links.append(block[-1] if len(block) > 1 else "")
    return links


def text_part_problems(text: str, where: str) -> list[str]:
    found = [f"{where}: {p}" for p in text_problems(text)]
    links = link_lines(text)
    assert len(links) > 10, f"{where}: no entries found in the text"
    found += [f"{where}: link {line.strip()[:80]!r}" for line in links if script_url(line)]
    return found


def test_the_email_preview_parses_and_holds_no_live_script(site: Site) -> None:
    _no_error(site, "build")
    problems = html_problems(site.outputs["email.html"], "email.html")
    problems += text_part_problems(site.outputs["email.txt"].decode("utf-8"), "email.txt")
    assert problems == [], f"{len(problems)} problems, e.g.\n" + "\n".join(problems[:40])


def test_the_sent_message_parses_and_holds_no_live_script(site: Site) -> None:
    _no_error(site, "send")
    assert len(site.messages) == 1, f"{len(site.messages)} messages reached the SMTP server"
    (data,) = site.messages
    problems = message_problems(data, "sent message")
    msg = message_from_bytes(data, policy=policy.default)
    (text,) = [p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain"]
    problems += text_part_problems(text, "sent message text/plain")
    assert problems == [], f"{len(problems)} problems, e.g.\n" + "\n".join(problems[:40])
