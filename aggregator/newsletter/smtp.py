"""Sending an issue over SMTP, exactly once per (issue, subscriber).

Theory of operation. Every delivery has one row in the store, written before
and after each step of its SMTP transaction:

    (none) --claim--> claimed --354 to DATA--> sending --250--> sent
                         |                        |--4xx--> claimed (retry)
                         |--5xx/4xx--> failed / deferred    |--5xx--> failed

- *claimed*: this sender owns the row (owner = "host:pid:nonce"); no byte of
  the message has left yet. The claim is an INSERT on the (issue, subscriber)
  primary key, so of two senders started at once exactly one wins; the other
  counts the row as busy and moves on.
- *sending*: recorded after the server answered 354 to DATA and before the
  message body is written to the socket. From here on the server may have
  the message.
- *sent* / *failed*: the server's final word (250, or a permanent 5xx, which
  also marks the subscriber bouncing when it refused the address).
- *deferred*: transient failures (4xx, dropped connections before DATA) used
  up the retries; the next `send` tries again.

A sender killed at any point leaves a row owned by a dead process (checked by
pid on the same host; on another host a claim older than STALE_AFTER counts
as dead). On restart:

- a dead *claimed* row is taken over and sent: nothing left before DATA, and
  a server drops a transaction whose connection closes before the final dot;
- a dead *sending* row is the one case nobody can decide: the body may or
  may not have reached the server. We record it *uncertain* and do NOT
  resend: the body is written to the socket in one call right after the
  row is committed, and once written the kernel delivers it even if the
  process dies, so "probably delivered" is far more likely than "lost", and
  a duplicate is the worse failure for a newsletter. `aggregator send
  --issue KEY --resend-uncertain` sends those again deliberately, with the
  same Message-ID so clients can recognise the copy.

Not here: what goes in the message (message.py), which issue and
which subscribers (compose.py, send.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING

from aggregator import clock
from aggregator.deliver.files import write_atomic
from aggregator.errors import DeliveryError
from aggregator.model import (
    Delivery,
    DeliveryStatus,
    Failure,
    Issue,
    Subscriber,
    SubscriberStatus,
)
from aggregator.newsletter import message

if TYPE_CHECKING:  # the store is handed in by the pipeline; only its type is needed here
    from aggregator.store import Store

#: a claim from another host older than this is taken to be from a dead sender
STALE_AFTER = timedelta(minutes=15)

#: progress(done, total, subscriber email, what happened)
Progress = Callable[[int, int, str, str], None]


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    user: str
    password: str | None
    starttls: bool
    implicit_tls: bool
    timeout: float
    #: messages per second; 0: no limit
    rate_limit: float
    #: tries per message on transient failures
    retries: int
    #: seconds before the first retry, doubled each time
    retry_backoff: float
    #: TLS context; None: the system's default verification
    tls_context: ssl.SSLContext | None = None


@dataclass
class Outcome:
    """What a send did, subscriber by subscriber."""

    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


def new_owner() -> str:
    """This process's claim owner: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


#: owners of the Senders running in this process (a daemon sends many times in one process)
_LIVE_OWNERS: set[str] = set()


def owner_alive(owner: str | None, claimed_at: datetime | None, now: datetime) -> bool:
    """Whether the process that holds a claim may still be working on it."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text == str(os.getpid()):
        return owner in _LIVE_OWNERS
    if host == socket.gethostname() and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's live process
            return True
        return True
    return claimed_at is not None and now - claimed_at < STALE_AFTER


class _Transient(Exception):
    """A failure worth retrying: 4xx, or the connection dropped before DATA."""


class _ConnectFailed(_Transient):
    """The server cannot be reached at all: no point trying the next subscriber."""


class _Permanent(Exception):
    """A 5xx: this subscriber's delivery fails for good."""

    def __init__(self, reason: str, bounce: bool) -> None:
        super().__init__(reason)
        self.bounce = bounce


class _Uncertain(Exception):
    """The connection dropped while the body was being handed over."""


class Connection:
    """One SMTP connection, opened on first use and reopened after a drop."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> smtplib.SMTP:
        if self.smtp is not None:
            return self.smtp
        s = self.settings
        if not s.host.strip():  # smtplib would only say "please run connect() first"
            raise DeliveryError("email.smtp_host is empty: name the SMTP server to send through")
        context = s.tls_context or ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if s.implicit_tls:
                smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            smtp.ehlo()
            if s.starttls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if s.user:
                if s.password is None:
                    raise DeliveryError(
                        "email.smtp_user is set but the password's environment variable"
                        " (email.smtp_password_env) is not"
                    )
                smtp.login(s.user, s.password)
        except smtplib.SMTPAuthenticationError as e:
            raise DeliveryError(
                f"SMTP {s.host}:{s.port} refused the login for {s.user!r}: {_reply(e)}"
            ) from None
        except smtplib.SMTPNotSupportedError as e:
            raise DeliveryError(f"SMTP {s.host}:{s.port}: {e}") from None
        except (OSError, smtplib.SMTPException) as e:
            raise _ConnectFailed(f"cannot connect to SMTP {s.host}:{s.port}: {e}") from None
        self.smtp = smtp
        return smtp

    def drop(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.close()
            finally:
                self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
            self.drop()


def _reply(e: smtplib.SMTPResponseException) -> str:
    text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else ""
    return f"{e.smtp_code} {text}".strip()


_LEADING_DOT = re.compile(rb"(?m)^\.")


def _wire_bytes(msg: EmailMessage, utf8: bool) -> bytes:
    """The DATA payload: CRLF lines, leading dots doubled, the final dot line."""
    raw = msg.as_bytes(policy=message.POLICY_UTF8 if utf8 else message.POLICY)
    raw = _LEADING_DOT.sub(b"..", raw)
    if not raw.endswith(b"\r\n"):
        raw += b"\r\n"
    return raw + b".\r\n"


class Sender:
    """Sends one issue to subscribers, keeping the delivery records."""

    def __init__(
        self,
        store: Store,
        settings: SmtpSettings,
        headers: message.ListHeaders,
        *,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.settings = settings
        self.headers = headers
        self.progress = progress
        self.sleep = sleep
        self.owner = new_owner()
        self.conn = Connection(settings)
        self._last_send = float("-inf")
        #: where the current delivery stands, for cleaning up after an error
        self._phase = DeliveryStatus.CLAIMED

    def send(self, issue: Issue, recipients: Sequence[Subscriber]) -> Outcome:
        """Deliver `issue` to every recipient who has no record of it yet."""
        out = Outcome()
        records = self.store.deliveries(issue.key)
        _LIVE_OWNERS.add(self.owner)
        try:
            for done, sub in enumerate(recipients, start=1):
                what = self._one(issue, sub, records.get(sub.id), out)
                if self.progress is not None:
                    self.progress(done, len(recipients), sub.email, what)
        finally:
            _LIVE_OWNERS.discard(self.owner)
            self.conn.quit()
        return out

    def _one(self, issue: Issue, sub: Subscriber, rec: Delivery | None, out: Outcome) -> str:
        now = clock.now()
        if rec is None:
            if not self.store.claim_delivery(issue.key, sub.id, self.owner, now):
                out.busy.append(sub.email)
                return "busy"
        elif rec.status in (DeliveryStatus.SENT, DeliveryStatus.FAILED):
            out.already.append(sub.email)
            return "already"
        elif rec.status is DeliveryStatus.UNCERTAIN:
            out.uncertain.append(sub.email)
            return "uncertain"
        elif rec.status is DeliveryStatus.SENDING:
            if owner_alive(rec.owner, rec.claimed_at, now):
                out.busy.append(sub.email)
                return "busy"
            if self.store.resolve_uncertain(issue.key, sub.id, rec, now):
                out.uncertain.append(sub.email)
                return "uncertain"
            out.busy.append(sub.email)
            return "busy"
        else:  # claimed by a dead sender, or deferred
            if rec.status is DeliveryStatus.CLAIMED and owner_alive(rec.owner, rec.claimed_at, now):
                out.busy.append(sub.email)
                return "busy"
            if not self.store.take_over_delivery(issue.key, sub.id, rec, self.owner, now):
                out.busy.append(sub.email)
                return "busy"
        self._phase = DeliveryStatus.CLAIMED
        try:
            return self._deliver(issue, sub, out)
        except BaseException:
            # Stopped by an error (a refused login, the database): leave the
            # record so the next send knows what to do with it.
            if self._phase is DeliveryStatus.CLAIMED:
                self._release(issue, sub, DeliveryStatus.DEFERRED, "send stopped before it")
            elif self._phase is DeliveryStatus.SENDING:
                self._release(issue, sub, DeliveryStatus.UNCERTAIN, "send stopped mid-handover")
            raise

    def _release(self, issue: Issue, sub: Subscriber, status: DeliveryStatus, why: str) -> None:
        with contextlib.suppress(Exception):  # already failing; the original error matters
            self.store.record_delivery(
                issue.key, sub.id, self.owner, status, clock.now(), error=why
            )

    def _deliver(self, issue: Issue, sub: Subscriber, out: Outcome) -> str:
        s = self.settings
        msg = message.build(issue, sub, self.headers, clock.now())
        utf8 = not (sub.email.isascii() and self.headers.sender.isascii())
        payload = _wire_bytes(msg, utf8)
        sender = message.sender_address(self.headers.sender).addr_spec
        error = ""
        unreachable = False
        for attempt in range(s.retries):
            if attempt:
                self.sleep(s.retry_backoff * 2 ** (attempt - 1))
            self._pace()
            try:
                self._transaction(issue, sub, sender, payload, utf8)
            except _Transient as e:
                error, unreachable = str(e), isinstance(e, _ConnectFailed)
                self.conn.drop()
                self._phase = DeliveryStatus.CLAIMED
                self._record(issue, sub, DeliveryStatus.CLAIMED, error, attempted=True)
                continue
            except _Permanent as e:
                self._record(issue, sub, DeliveryStatus.FAILED, str(e), attempted=True)
                self._phase = DeliveryStatus.FAILED
                if e.bounce:
                    self.store.set_subscriber_status(
                        sub.id, SubscriberStatus.BOUNCING, f"refused: {e}", clock.now()
                    )
                out.failures.append(Failure(sub.email, str(e)))
                return "failed"
            except _Uncertain as e:
                self.conn.drop()
                self._record(issue, sub, DeliveryStatus.UNCERTAIN, str(e), attempted=True)
                self._phase = DeliveryStatus.UNCERTAIN
                out.uncertain.append(sub.email)
                return "uncertain"
            self._record(issue, sub, DeliveryStatus.SENT, None, attempted=True)
            self._phase = DeliveryStatus.SENT
            out.sent.append(sub.email)
            return "sent"
        self._record(issue, sub, DeliveryStatus.DEFERRED, error)
        self._phase = DeliveryStatus.DEFERRED
        if unreachable:  # everyone else would wait through the same retries
            raise DeliveryError(f"{error} (tried {s.retries} times; the next send resumes)")
        out.failures.append(Failure(sub.email, f"deferred after {s.retries} tries: {error}"))
        return "deferred"

    def _transaction(
        self, issue: Issue, sub: Subscriber, sender: str, payload: bytes, utf8: bool
    ) -> None:
        smtp = self.conn.open()
        options = ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else []
        try:
            code, reply = smtp.mail(sender, options)
            _check(code, reply, "MAIL FROM", bounce=False)
            code, reply = smtp.rcpt(sub.email)
            _check(code, reply, "RCPT TO", bounce=True)
            code, reply = smtp.docmd("DATA")
            _check(code, reply, "DATA", bounce=False, expect=354)
        except (_Transient, _Permanent):
            self._reset(smtp)
            raise
        except (OSError, smtplib.SMTPException) as e:
            raise _Transient(f"connection lost before DATA: {e}") from None
        # From here the server may end up with the message: record that first.
        self._record(issue, sub, DeliveryStatus.SENDING, None)
        self._phase = DeliveryStatus.SENDING
        try:
            smtp.send(payload)
            code, reply = smtp.getreply()
        except (OSError, smtplib.SMTPException) as e:
            raise _Uncertain(f"connection lost while handing the message over: {e}") from None
        self._last_send = time.monotonic()
        _check(code, reply, "end of DATA", bounce=False)

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.conn.drop()

    def _pace(self) -> None:
        rate = self.settings.rate_limit
        if rate > 0:
            wait = self._last_send + 1.0 / rate - time.monotonic()
            if wait > 0:
                self.sleep(wait)

    def _record(
        self,
        issue: Issue,
        sub: Subscriber,
        status: DeliveryStatus,
        error: str | None,
        *,
        attempted: bool = False,
    ) -> None:
        if not self.store.record_delivery(
            issue.key, sub.id, self.owner, status, clock.now(), error=error, attempted=attempted
        ):
            # Another sender took the row over: it judged us dead. Stop rather
            # than risk a second copy.
            raise DeliveryError(
                f"issue {issue.key}: lost the claim on {sub.email} to another sender"
            )


def _check(code: int, reply: bytes, step: str, *, bounce: bool, expect: int = 250) -> None:
    if code == expect or (expect == 250 and code == 251):
        return
    text = f"{step}: {code} {reply.decode('utf-8', 'replace')}".strip()
    if 500 <= code < 600:
        raise _Permanent(text, bounce=bounce and code in (550, 551, 553))
    raise _Transient(text)


def write_outbox(
    outbox: Path,
    issue: Issue,
    recipients: Sequence[Subscriber],
    headers: message.ListHeaders,
    now: datetime,
) -> list[str]:
    """Dry run: write one .eml per recipient into `outbox`; record nothing."""
    written = []
    for sub in recipients:
        msg = message.build(issue, sub, headers, now)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", sub.email)
        path = outbox / f"{issue.key}-{sub.id:05d}-{safe}.eml"
        try:
            write_atomic(path, msg.as_bytes(policy=message.POLICY))
        except OSError as e:
            raise DeliveryError(f"{path}: cannot write: {e.strerror}") from None
        written.append(str(path))
    return written
