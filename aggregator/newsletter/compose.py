"""Composing an issue: which entries (the window since the last issue), rendered
and sized to fit, its web archive page, and the preview of the next one.

Nothing here sends or stores: `send` stores the issue it composes.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from aggregator.config import Config
from aggregator.deliver.files import write_outputs
from aggregator.errors import DeliveryError
from aggregator.mathspans import email_images
from aggregator.model import DigestEntry, Issue
from aggregator.newsletter import issues, message
from aggregator.pipeline.paging import paginate_entries
from aggregator.render.email import render_archive, render_email
from aggregator.store import Store

log = logging.getLogger("aggregator.newsletter")


def archive_path(key: str) -> str:
    """Where an issue's web archive page is written, relative to the output dir."""
    return f"issues/{key}.html"


def math_dir(key: str) -> str:
    """Where the images of an issue's formulas are published, relative to the
    output dir (one file per formula, named by it)."""
    return f"issues/{key}/math/"


def issue_images(issue: Issue) -> dict[str, bytes]:
    """The images of the formulas `issue`'s email shows, as {path under the
    output dir: PNG bytes}: they must be in place when it is sent or previewed."""
    images, _ = email_images(issue.html, math_dir(issue.key))
    return {math_dir(issue.key) + name: png for name, png in images.items()}


def archive_pages(store: Store) -> dict[str, bytes]:
    """Every stored issue's web archive page and its email's formula images,
    as {path under the output dir: bytes}."""
    files: dict[str, bytes] = {}
    for i in store.issues():
        files[archive_path(i.key)] = i.archive_html.encode("utf-8")
        files.update(issue_images(i))
    return files


def unsubscribe_base(config: Config) -> str:
    """The one-click unsubscribe URL without its token: [email] unsubscribe_url,
    default <base_url>unsubscribe/. The daemon's web endpoint serves
    POST (RFC 8058 one-click) and GET (a confirmation page) at base + token."""
    return config.email.unsubscribe_url or config.site.url("unsubscribe/")


def compose_issue(config: Config, store: Store, now: datetime, key: str | None = None) -> Issue:
    """The issue cut at `now`: entries first seen since the latest stored issue's
    cut-off, rendered and sized to fit. Not stored: `send` stores it."""
    key = key or issues.issue_key(now, config.site.tz)
    previous = store.latest_issue()
    entries = _issue_entries(config, store, now, previous.cutoff if previous else None)
    return _render_issue(config, key, entries, now)


def next_issue(config: Config, store: Store, now: datetime) -> Issue:
    """The issue the next `send` would compose (for previews)."""
    key = issues.issue_key(now, config.site.tz)
    if store.issue(key) is not None:  # this week's is out; the next is next week's
        key = issues.issue_key(now + timedelta(days=7), config.site.tz)
    return compose_issue(config, store, now, key)


def preview_files(issue: Issue) -> dict[str, bytes]:
    """public/email.html and email.txt: `issue` as a subscriber would see it,
    with the images of its formulas (issues/<key>/math/)."""
    return {
        "email.html": message.personalize(issue.html, "preview").encode("utf-8"),
        "email.txt": message.personalize(issue.text, "preview").encode("utf-8"),
        **issue_images(issue),
    }


def preview(
    config: Config, store: Store, now: datetime, issue_key: str | None = None
) -> list[Path]:
    """Write an issue's email HTML and text into the output directory; return the paths.

    Without a key: the next issue (public/email.html, email.txt, as build does).
    With a key: that stored issue, as sent (email-<key>.html, email-<key>.txt).
    """
    if issue_key is None:
        files = preview_files(next_issue(config, store, now))
    else:
        issue = store.issue(issue_key)
        if issue is None:
            raise DeliveryError(f"no issue {issue_key} in the database")
        files = {
            f"email-{issue_key}.html": message.personalize(issue.html, "preview").encode("utf-8"),
            f"email-{issue_key}.txt": message.personalize(issue.text, "preview").encode("utf-8"),
            **issue_images(issue),
        }
    write_outputs(config.output.dir, files)
    # the email's two parts (its formulas' images are written beside them)
    return [config.output.dir / name for name in sorted(files) if name.startswith("email")]


def _issue_entries(
    config: Config, store: Store, now: datetime, previous_cutoff: datetime | None
) -> list[DigestEntry]:
    visible = store.visible_entries(now, [s.key for s in config.sources])
    max_age = timedelta(days=config.email.max_age_days)
    chosen = issues.window(visible, previous_cutoff, now, max_age)
    # One page holding them all: the email is one page, each article once.
    return list(paginate_entries(config, store, chosen, max(1, len(chosen)))[0].entries)


def _render_issue(config: Config, key: str, entries: list[DigestEntry], now: datetime) -> Issue:
    site = config.site
    web_url = site.url(archive_path(key))
    # The placeholder is as long as a real token, so the size measured is the size sent.
    unsubscribe = message.placeholder_url(unsubscribe_base(config))
    math_url = site.url(math_dir(key))
    rendered: dict[int, tuple[str, str]] = {}

    def render(n: int) -> tuple[str, str]:
        if n not in rendered:
            body = render_email(
                entries[:n], site, web_url, issue_key=key, total=len(entries),
                unsubscribe_url=unsubscribe, math_url=math_url,
            )  # fmt: skip
            rendered[n] = (body.html, body.text)
        return rendered[n]

    limit = config.email.max_html_kb * 1024
    shown = issues.fit(len(entries), lambda n: message.encoded_html_size(render(n)[0]), limit)
    html, text = render(shown)
    for tex in email_images(html, math_dir(key))[1]:
        log.warning("issue %s: formula %s shown as TeX in the email (cannot be drawn)", key, tex)
    return Issue(
        key=key,
        cutoff=now,
        subject=issues.subject(
            config.email.subject, title=site.title, count=len(entries), issue=key
        ),
        html=html,
        text=text,
        archive_html=render_archive(entries, site, web_url, issue_key=key),
        entry_count=len(entries),
        shown_count=shown,
        created=now,
    )
