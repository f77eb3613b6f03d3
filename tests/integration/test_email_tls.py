"""STARTTLS and implicit TLS with authentication, against aiosmtpd with a test CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from aggregator import newsletter, pipeline
from aggregator.errors import DeliveryError
from aggregator.store import Store
from tests.conftest import NOW
from tests.email_setup import configure
from tests.smtp_server import Handler, free_port

# aiosmtpd warns about AUTH without STARTTLS; with implicit TLS the link is TLS throughout.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

READERS = [("ada@example.com", "Ada"), ("lin@example.org", "Lin")]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"digest", b"s3cret")
    return AuthResult(success=ok, handled=False)


def start(ca: trustme.CA, implicit: bool) -> tuple[Controller, Handler, int]:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    handler, port = Handler(), free_port()
    tls: dict[str, Any] = (
        # aiosmtpd only counts STARTTLS as TLS for AUTH; with implicit TLS it is TLS throughout.
        {"ssl_context": server_ctx, "auth_require_tls": False}
        if implicit
        else {"tls_context": server_ctx, "require_starttls": True}
    )
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, auth_required=True,
        authenticator=authenticator, **tls,
    )  # fmt: skip
    controller.start()
    return controller, handler, port


@pytest.fixture(params=[False, True], ids=["starttls", "implicit-tls"])
def tls_server(
    request: pytest.FixtureRequest, ca: trustme.CA
) -> Iterator[tuple[bool, Handler, int]]:
    controller, handler, port = start(ca, request.param)
    try:
        yield request.param, handler, port
    finally:
        controller.stop()


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_sends_over_tls_with_the_password_from_the_environment(
    example: Path,
    ca: trustme.CA,
    tls_server: tuple[bool, Handler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    implicit, handler, port = tls_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    config = configure(
        example, port, READERS, smtp_host="127.0.0.1", smtp_user="digest",
        smtp_password_env="TEST_SMTP_PASSWORD", starttls=not implicit, implicit_tls=implicit,
    )  # fmt: skip
    store = Store.open(config.database.url)
    pipeline.ingest(config, store, NOW)
    report = newsletter.send(config, store, NOW, tls_context=client_context(ca))
    assert report.sent == 2 and not report.failures
    assert sorted(r.rcpt_tos[0] for r in handler.received) == ["ada@example.com", "lin@example.org"]


def test_a_wrong_password_stops_the_send_with_a_clear_error(
    example: Path,
    ca: trustme.CA,
    tls_server: tuple[bool, Handler, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    implicit, handler, port = tls_server
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong")
    config = configure(
        example, port, READERS, smtp_host="127.0.0.1", smtp_user="digest",
        smtp_password_env="TEST_SMTP_PASSWORD", starttls=not implicit, implicit_tls=implicit,
    )  # fmt: skip
    store = Store.open(config.database.url)
    pipeline.ingest(config, store, NOW)
    with pytest.raises(DeliveryError, match="refused the login for 'digest'"):
        newsletter.send(config, store, NOW, tls_context=client_context(ca))
    assert handler.received == []
    # Nobody was lost: with the right password the same issue goes to both.
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    report = newsletter.send(config, store, NOW, tls_context=client_context(ca))
    assert report.sent == 2
