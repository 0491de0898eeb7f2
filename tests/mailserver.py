"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, keeping every message it accepted.

``reject`` maps a recipient to an SMTP reply (``"550 no such user"``, ``"451 try later"``) to
simulate refusals.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    def __init__(self, keep: bool = True) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # as received, when kept
        self.mail_options: list[list[str]] = []  # MAIL FROM parameters, e.g. BODY=8BITMIME
        self.count = 0
        self.reject: dict[str, str] = {}
        self.lock = threading.Lock()
        self.keep = keep

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        reply = self.reject.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        with self.lock:
            self.count += 1
            if self.keep:
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                self.messages.append(msg)
                self.raw.append(raw)
                self.mail_options.append(list(envelope.mail_options))
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


class MailServer:
    def __init__(self, port: int | None = None, keep: bool = True, eightbit: bool = True) -> None:
        self.port = port or free_port()
        self.recorder = Recorder(keep)
        # decode_data=True: a server that does not offer 8BITMIME.
        self.options = {} if eightbit else {"decode_data": True}
        self.controller = self._controller()
        self.running = False

    def _controller(self) -> Controller:
        return Controller(self.recorder, hostname="127.0.0.1", port=self.port, **self.options)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> MailServer:
        self.controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False

    def restart(self) -> None:
        """Come back on the same port, keeping what was received."""
        self.controller = self._controller()
        self.start()
