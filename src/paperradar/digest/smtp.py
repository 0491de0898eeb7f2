"""SMTP delivery through smtplib: ``smtp://[user:pass@]host:port`` (``?starttls=true`` to
upgrade), ``smtps://`` for implicit TLS. One connection reused for a run, a rate limit, retries
with exponential backoff on temporary failures (4xx replies, dropped connections) and a clear
split between temporary and permanent (5xx) failures."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from paperradar.digest.render import RawMail
from paperradar.errors import ConfigError, PaperradarError

__all__ = [
    "PermanentFailure",
    "RateLimit",
    "SmtpConfig",
    "SmtpSender",
    "TemporaryFailure",
    "parse_smtp_url",
]

log = logging.getLogger(__name__)


class TemporaryFailure(PaperradarError):
    """The server could not take the message now (4xx, connection trouble): try again later."""

    def __init__(self, message: str, *, connection: bool = False) -> None:
        self.connection = connection
        super().__init__(message)


class PermanentFailure(PaperradarError):
    """The server refused the message for good (5xx): do not retry this message."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    tls: bool = False  # implicit TLS (smtps)
    starttls: bool = False
    username: str | None = None
    password: str | None = None


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse ``PAPERRADAR_SMTP_URL``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(
            f"PAPERRADAR_SMTP_URL {url!r} is not smtp://[user:pass@]host:port or smtps://…"
        )
    query = parse_qs(parts.query)
    starttls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError as exc:
        raise ConfigError(f"PAPERRADAR_SMTP_URL {url!r} has a bad port") from exc
    return SmtpConfig(
        host=parts.hostname,
        port=port,
        tls=parts.scheme == "smtps",
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class RateLimit:
    """At most ``per_s`` messages a second, shared by every connection of a run (0: no limit)."""

    def __init__(self, per_s: float) -> None:
        self.interval = 1.0 / per_s if per_s > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class SmtpSender:
    """Sends messages over one reused connection (reconnecting when dropped)."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        timeout: float = 30.0,
        rate_per_s: float = 0.0,
        retries: int = 3,
        backoff_s: float = 2.0,
        rate: RateLimit | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.rate = rate or RateLimit(rate_per_s)
        self.retries = retries
        self.backoff_s = backoff_s
        self._conn: smtplib.SMTP | None = None
        self.sent = 0

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (smtplib.SMTPException, OSError):
                self._conn.close()
            self._conn = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        conn: smtplib.SMTP
        if c.tls:
            conn = smtplib.SMTP_SSL(
                c.host, c.port, timeout=self.timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if c.starttls:
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if c.username:
                conn.login(c.username, c.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def eightbit(self) -> bool:
        """Whether the server takes 8bit bodies (8BITMIME); connects if not connected yet.
        False when it cannot be reached (``send`` then reports why)."""
        try:
            if self._conn is None:
                self._conn = self._connect()
        except (smtplib.SMTPException, OSError):
            return False
        return bool(self._conn.has_extn("8bitmime"))

    def _throttle(self) -> None:
        self.rate.wait()

    def send(self, msg: EmailMessage | RawMail) -> None:
        """Deliver ``msg``; retry temporary failures with backoff; raise TemporaryFailure when
        they persist and PermanentFailure on a 5xx refusal."""
        attempt = 0
        while True:
            try:
                self._send_once(msg)
                self.sent += 1
                return
            except PermanentFailure:
                raise
            except TemporaryFailure as exc:
                if attempt >= self.retries:
                    raise
                delay = self.backoff_s * 2**attempt
                log.warning("smtp temporary failure (%s); retrying in %.2fs", exc, delay)
                time.sleep(delay)
                attempt += 1

    def _send_once(self, msg: EmailMessage | RawMail) -> None:
        self._throttle()
        try:
            if self._conn is None:
                self._conn = self._connect()
            if isinstance(msg, RawMail):
                options: list[str] = []
                if msg.eightbit:
                    if not self._conn.has_extn("8bitmime"):  # reconnected to another server
                        raise TemporaryFailure("the SMTP server no longer offers 8BITMIME")
                    options.append("BODY=8BITMIME")
                refused = self._conn.sendmail(msg.envelope_from, [msg.to], msg.data, options)
            else:
                refused = self._conn.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            text = "; ".join(f"{r}: {c} {m!r}" for r, (c, m) in exc.recipients.items())
            if codes and all(400 <= c < 500 for c in codes):
                raise TemporaryFailure(f"recipient deferred: {text}") from exc
            raise PermanentFailure(f"recipient refused: {text}") from exc
        except smtplib.SMTPResponseException as exc:
            self._drop_if_broken(exc.smtp_code)
            raw = exc.smtp_error
            detail = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
            if 400 <= exc.smtp_code < 500:
                raise TemporaryFailure(f"server said {exc.smtp_code} {detail}") from exc
            raise PermanentFailure(f"server said {exc.smtp_code} {detail}") from exc
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            where = f"{self.config.host}:{self.config.port}"
            raise TemporaryFailure(
                f"cannot talk to the SMTP server {where}: {exc}", connection=True
            ) from exc
        except smtplib.SMTPException as exc:
            raise TemporaryFailure(f"SMTP error: {exc}") from exc
        if refused:
            text = "; ".join(f"{r}: {c}" for r, (c, _) in refused.items())
            raise PermanentFailure(f"recipient refused: {text}")

    def _drop_if_broken(self, code: int) -> None:
        if code in (421,) and self._conn is not None:
            with contextlib.suppress(OSError, socket.error):
                self._conn.close()
            self._conn = None
