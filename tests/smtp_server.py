"""A real SMTP server (aiosmtpd) on loopback for the newsletter tests and benchmark.

It records every accepted message, counts connections, and can be told to
answer chosen recipients with an error (421/451/550, at RCPT or at DATA),
a given number of times, or to call a hook after the n-th accepted message
(to kill a sender mid-run).

    with SmtpServer() as server:
        server.reject(lambda rcpt: rcpt.endswith("@slow.example"), 451, times=2)
        ... send to 127.0.0.1:server.port ...
        messages = server.parsed()
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Rule:
    match: Callable[[str], bool]
    code: int
    text: str
    stage: str  # "rcpt" | "data"
    remaining: int | None  # None: always


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def parse(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)  # type: ignore[return-value]


class Handler:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[Received] = []
        self.rules: list[Rule] = []
        self.connections = 0
        self.on_message: Callable[[int], None] | None = None
        self.refused: list[tuple[str, int]] = []
        self.mail_options: list[list[str]] = []

    def _rule(self, stage: str, recipient: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.stage == stage and rule.match(recipient) and rule.remaining != 0:
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    self.refused.append((recipient, rule.code))
                    return rule
        return None

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,
                          mail_options: list[str]) -> str:
        with self.lock:
            self.mail_options.append(list(mail_options))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        rule = self._rule("rcpt", address)
        if rule is not None:
            return f"{rule.code} {rule.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for rcpt in envelope.rcpt_tos:
            rule = self._rule("data", rcpt)
            if rule is not None:
                return f"{rule.code} {rule.text}"
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          bytes(envelope.original_content or envelope.content)))
            count = len(self.messages)
        if self.on_message is not None:
            self.on_message(count)
        return "250 2.0.0 queued"


class SmtpServer:
    """aiosmtpd in a thread of its own, listening on 127.0.0.1:<free port>."""

    def __init__(self, port: int | None = None, **controller: Any) -> None:
        """`port`: listen there (a server coming back where a sender keeps knocking);
        `controller`: extra aiosmtpd Controller arguments, e.g. tls_context=...,
        require_starttls=True, authenticator=..., auth_required=True, ssl_context=..."""
        self.handler = Handler()
        self.port = port or free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10, **controller)

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reject(self, match: Callable[[str], bool], code: int, text: str | None = None, *,
               stage: str = "rcpt", times: int | None = None) -> None:
        """Answer matching recipients with `code` (at RCPT or DATA), `times` times or always."""
        default = {421: "4.3.2 Service shutting down", 451: "4.7.1 Try again later",
                   550: "5.1.1 No such user"}
        with self.handler.lock:
            self.handler.rules.append(Rule(match, code, text or default.get(code, "error"), stage,
                                           times))

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def connections(self) -> int:
        return self.handler.connections

    def recipients(self) -> list[str]:
        return [r for m in self.messages for r in m.recipients]

    def parsed(self) -> list[EmailMessage]:
        return [m.parse() for m in self.messages]

    def smtp_settings(self, **extra: Any) -> dict[str, Any]:
        """An `[smtp]` section pointing at this server."""
        return {"host": "127.0.0.1", "port": self.port, "tls": "none",
                "from_address": "Sieć Organizacji Żółć <newsletter@example.org>",
                "reply_to": "sekretariat@example.org", "retry_base_s": 0.05, **extra}


@pytest.fixture(name="smtp")
def smtp_fixture() -> Iterator[SmtpServer]:
    """Import `smtp_fixture` into a test module and ask for `smtp`."""
    with SmtpServer() as server:
        yield server
