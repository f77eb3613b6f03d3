"""One subscriber's copy of an issue as a MIME message. Pure: no IO.

multipart/alternative with the text part first and the HTML part last (the
part a client prefers comes last), both UTF-8. Every header value that comes
from content or configuration passes through issues.header_text, so a title
with CR or LF can never start a header of its own.
"""

from __future__ import annotations

import binascii
import hashlib
import quopri
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import quote

from email_validator import EmailNotValidError, validate_email

from aggregator.errors import DeliveryError
from aggregator.model import UNSUBSCRIBE_PLACEHOLDER, Issue, Subscriber
from aggregator.newsletter.issues import header_text


@dataclass(frozen=True)
class ListHeaders:
    """What every message of the list carries besides the issue itself."""

    #: the From header as configured: "Name <address>"
    sender: str
    #: List-Id value, e.g. "INCOMING TRANSMISSION <digest.blog.example.org>"
    list_id: str
    #: address for mailto: unsubscribes
    unsubscribe_mailto: str
    #: the one-click URL base; the subscriber's token is appended
    unsubscribe_url: str


class _UrlListHeader(UnstructuredHeader):
    """List-Unsubscribe: folded only between its <URL>s, never encoded.

    The stock folding turns a URL longer than a line into RFC 2047 encoded
    words, which no client reads as a URL (RFC 2369 wants them verbatim).
    """

    def fold(self, *, policy: Any) -> str:
        parts = [p.strip() for p in str(self).split(",") if p.strip()]
        name: str = getattr(self, "name")  # noqa: B009 - set by BaseHeader at runtime
        return f"{name}: " + f",{policy.linesep} ".join(parts) + str(policy.linesep)


_REGISTRY = HeaderRegistry()
_REGISTRY.map_to_type("list-unsubscribe", _UrlListHeader)  # type: ignore[arg-type]
#: the message policy: SMTP line endings, and List-Unsubscribe kept verbatim
POLICY = policy.SMTP.clone(header_factory=_REGISTRY)
POLICY_UTF8 = policy.SMTPUTF8.clone(header_factory=_REGISTRY)


def normalize_address(address: str) -> str:
    """A subscriber's address checked and normalized; DeliveryError says what is wrong."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise DeliveryError(f"not an email address: {address!r} ({e})") from None


def unsubscribe_link(base: str, token: str) -> str:
    """The subscriber's https one-click unsubscribe URL: base + token."""
    return base + quote(token, safe="")


def personalize(text: str, token: str) -> str:
    """Put the subscriber's token where the stored issue has the placeholder."""
    return text.replace(UNSUBSCRIBE_PLACEHOLDER, quote(token, safe=""))


def placeholder_url(base: str) -> str:
    """The unsubscribe URL a stored issue carries until it is personalized."""
    return base + UNSUBSCRIBE_PLACEHOLDER


def message_id(issue: str, subscriber: Subscriber, domain: str) -> str:
    """A Message-ID stable per (issue, subscriber): a resend is recognizably the same message."""
    digest = hashlib.sha256(f"{issue}\0{subscriber.token}".encode()).hexdigest()[:20]
    return f"<{issue}.{subscriber.id}.{digest}@{domain}>"


def sender_address(sender: str) -> Address:
    """The From header as an Address; a DeliveryError names what is wrong."""
    name, addr = parseaddr(header_text(sender))
    if "@" not in addr:
        raise DeliveryError(f"email.from is not an address: {sender!r}")
    user, _, domain = addr.rpartition("@")
    return Address(display_name=name, username=user, domain=domain)


def build(
    issue: Issue, subscriber: Subscriber, headers: ListHeaders, now: datetime
) -> EmailMessage:
    """The message for one subscriber, with their own unsubscribe links."""
    sender = sender_address(headers.sender)
    link = unsubscribe_link(headers.unsubscribe_url, subscriber.token)
    mailto = f"mailto:{headers.unsubscribe_mailto}?subject=" + quote(
        f"unsubscribe {subscriber.token}", safe=""
    )
    user, _, domain = subscriber.email.rpartition("@")
    msg = EmailMessage(policy=POLICY)
    msg["Subject"] = header_text(issue.subject)
    msg["From"] = sender
    msg["To"] = Address(display_name=header_text(subscriber.name), username=user, domain=domain)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(issue.key, subscriber, sender.domain)
    msg["List-Id"] = header_text(headers.list_id)
    msg["List-Unsubscribe"] = f"<{header_text(link)}>, <{header_text(mailto)}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["X-Aggregator-Issue"] = issue.key
    text = personalize(issue.text, subscriber.token)
    html = personalize(issue.html, subscriber.token)
    msg.set_content(text, subtype="plain", charset="utf-8", cte=_cte(text))
    msg.add_alternative(html, subtype="html", charset="utf-8", cte=_cte(html))
    return msg


def _cte(body: str) -> str:
    """The shorter of quoted-printable and base64 for `body`.

    Mostly-ASCII markup is shorter in quoted-printable; CJK-heavy text in
    base64 (quoted-printable spends nine characters on each CJK character).
    Never 8bit: not every server on the way speaks 8BITMIME.
    """
    raw = body.encode("utf-8")
    if raw.isascii() and max((len(line) for line in raw.splitlines()), default=0) <= 76:
        return "7bit"
    return "quoted-printable" if _qp_size(raw) <= _b64_size(raw) else "base64"


def _qp_size(raw: bytes) -> int:
    return len(quopri.encodestring(raw))


def _b64_size(raw: bytes) -> int:
    return len(binascii.b2a_base64(raw)) * 77 // 76


def encoded_html_size(html: str) -> int:
    """Bytes the HTML part takes in the message as sent (its encoded source)."""
    raw = html.encode("utf-8")
    cte = _cte(html)
    if cte == "7bit":
        return len(raw)
    return _qp_size(raw) if cte == "quoted-printable" else _b64_size(raw)
