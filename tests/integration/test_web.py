"""The HTTP app: content types, conditional GET, health, RFC 8058 unsubscribe."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from aggregator.web import create_app

ATOM = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"/>'


class Subscribers:
    """A small real unsubscribe action: tokens -> addresses, unsubscribing removes."""

    def __init__(self) -> None:
        self.active = {"tok-alice": "alice@example.org"}
        self.unsubscribed: list[str] = []

    def __call__(self, token: str) -> str | None:
        email = self.active.pop(token, None)
        if email:
            self.unsubscribed.append(email)
        return email


@pytest.fixture
def public(tmp_path: Path) -> Path:
    out = tmp_path / "public"
    (out / "feed").mkdir(parents=True)
    (out / "feed.atom").write_bytes(ATOM)
    (out / "feed" / "page-2.atom").write_bytes(ATOM)
    (out / "feed.json").write_text('{"version": "https://jsonfeed.org/version/1.1"}')
    (out / "rss.xml").write_text("<rss/>")
    (out / "index.html").write_text("<!doctype html><title>digest</title>")
    (out / "email.txt").write_text("plain")
    return out


@pytest.fixture
def subscribers() -> Subscribers:
    return Subscribers()


@pytest.fixture
def client(public: Path, subscribers: Subscribers) -> TestClient:
    health = {"ok": True, "last_ingest": "2026-11-22T12:00:00+00:00", "failing_feeds": []}
    return TestClient(create_app(public, health=lambda: health, unsubscribe=subscribers))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/feed.atom", "application/atom+xml"),
        ("/feed/page-2.atom", "application/atom+xml"),
        ("/feed.json", "application/feed+json"),
        ("/rss.xml", "application/rss+xml"),
        ("/", "text/html; charset=utf-8"),
        ("/email.txt", "text/plain; charset=utf-8"),
    ],
)
def test_outputs_are_served_with_the_types_feed_readers_expect(
    client: TestClient, path: str, content_type: str
) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == content_type


def test_conditional_requests_get_304_until_the_file_changes(
    client: TestClient, public: Path
) -> None:
    first = client.get("/feed.atom")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert first.content == ATOM and first.headers["cache-control"] == "no-cache"
    assert client.get("/feed.atom", headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/feed.atom", headers={"If-Modified-Since": modified}).status_code == 304
    (public / "feed.atom").write_bytes(ATOM.replace(b"/>", b"><title>new</title></feed>"))
    again = client.get("/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 200 and b"new" in again.content


def test_missing_files_and_escapes_are_404(client: TestClient) -> None:
    assert client.get("/nope.atom").status_code == 404
    assert client.get("/../../etc/passwd").status_code == 404


def test_health_reports_as_json(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["last_ingest"] == "2026-11-22T12:00:00+00:00"


def test_health_is_503_when_the_report_says_not_ok(public: Path) -> None:
    app = create_app(public, health=lambda: {"ok": False, "error": "database is locked"})
    r = TestClient(app).get("/healthz")
    assert r.status_code == 503 and r.json()["error"] == "database is locked"


def test_get_shows_a_confirmation_form_and_unsubscribes_nobody(
    client: TestClient, subscribers: Subscribers
) -> None:
    r = client.get("/unsubscribe/tok-alice")
    assert r.status_code == 200
    assert '<form method="post">' in r.text
    assert 'name="List-Unsubscribe" value="One-Click"' in r.text
    assert subscribers.unsubscribed == []


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes(
    client: TestClient, subscribers: Subscribers, encoding: str
) -> None:
    # RFC 8058: mail clients send multipart/form-data or x-www-form-urlencoded.
    if encoding == "urlencoded":
        r = client.post("/unsubscribe/tok-alice", data={"List-Unsubscribe": "One-Click"})
    else:
        r = client.post("/unsubscribe/tok-alice", files={"List-Unsubscribe": (None, "One-Click")})
    assert r.status_code == 200
    assert "alice@example.org will receive no more issues" in r.text
    assert subscribers.unsubscribed == ["alice@example.org"]


def test_post_without_the_one_click_field_is_refused(
    client: TestClient, subscribers: Subscribers
) -> None:
    r = client.post("/unsubscribe/tok-alice", data={"something": "else"})
    assert r.status_code == 400
    assert subscribers.unsubscribed == []


def test_unknown_token_is_404_and_html_is_escaped(client: TestClient) -> None:
    r = client.post("/unsubscribe/<script>", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 404
    assert "<script>" not in r.text


def test_preview_app_has_no_unsubscribe_or_health(public: Path) -> None:
    c = TestClient(create_app(public))
    assert c.get("/healthz").status_code == 404
    assert c.post("/unsubscribe/x", data={"List-Unsubscribe": "One-Click"}).status_code in (
        404,
        405,
    )
    assert c.get("/feed.atom").status_code == 200
