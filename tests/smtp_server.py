"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, recording what it accepts."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        msg = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Handler:
    """Accepts every message, except as scripted by `refuse` (address -> replies to give)."""

    received: list[Received] = field(default_factory=list)
    #: RCPT TO address -> list of replies to give, one per attempt, before accepting
    refuse_rcpt: dict[str, list[str]] = field(default_factory=dict)
    #: RCPT TO address -> replies to give at end of DATA, one per attempt
    refuse_data: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: seconds to wait before answering the end of DATA (a slow server; the
    #: sender sits in its "sending" state meanwhile)
    delay: float = 0.0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            replies = self.refuse_rcpt.get(address)
            if replies:
                return replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                replies = self.refuse_data.get(rcpt)
                if replies:
                    return replies.pop(0)
            self.received.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 Message accepted"

    def count_by_rcpt(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for r in self.received:
                for rcpt in r.rcpt_tos:
                    counts[rcpt] = counts.get(rcpt, 0) + 1
        return counts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SmtpServer:
    handler: Handler
    port: int


def serve() -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 that keeps every message it accepts (for a fixture)."""
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(handler, port)
    finally:
        controller.stop()
