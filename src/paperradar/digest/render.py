"""Mail rendering: Jinja2 templates shipped in the package (HTML with inline CSS, no script, no
remote images; plus plain text), assembled into a multipart message with Message-ID, Date,
List-Id and RFC 8058 one-click List-Unsubscribe headers."""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from email.utils import parseaddr as _parseaddr
from functools import lru_cache
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = [
    "MailParts",
    "RawMail",
    "build_message",
    "build_raw",
    "render_fragment",
    "render_mail",
    "summarize",
]

_html = jinja2.Environment(
    loader=jinja2.PackageLoader("paperradar", "digest/templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # templates ship in the package; no stat() per render
)
_text = jinja2.Environment(
    loader=jinja2.PackageLoader("paperradar", "digest/templates"),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,
)


@dataclass(slots=True)
class MailParts:
    subject: str
    text: str
    html: str
    headers: dict[str, str] = field(default_factory=dict)


def summarize(text: str, limit: int = 280) -> str:
    """The first ``limit`` characters of an abstract, cut at a word."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + " …"


def render_mail(template: str, subject: str, **context: Any) -> MailParts:
    """Render ``template``.html and .txt with ``context`` (HTML autoescaped)."""
    ctx = {"subject": subject, **context}
    return MailParts(
        subject=subject,
        text=_text.get_template(f"{template}.txt").render(ctx),
        html=_html.get_template(f"{template}.html").render(ctx),
    )


def render_fragment(template: str, context: dict[str, Any]) -> Any:
    """A piece rendered once and placed in many mails: Markup for ``.html`` (escaped here, not
    again), plain text for ``.txt``; without its final line break."""
    if template.endswith(".html"):
        return Markup(_html.get_template(template).render(context).rstrip("\n"))
    return _text.get_template(template).render(context).rstrip("\n")


@dataclass(frozen=True, slots=True)
class RawMail:
    """A message ready for SMTP: envelope sender and recipient, and the CRLF bytes.
    ``eightbit``: a body part is sent as 8bit UTF-8, which needs the server's 8BITMIME."""

    envelope_from: str
    to: str
    data: bytes
    message_id: str
    eightbit: bool = False


def _header(value: str) -> str:
    """A header value, RFC 2047-encoded when it is not ASCII; no line breaks ever."""
    value = " ".join(value.split())
    return value if value.isascii() else Header(value, "utf-8").encode()


_BARE_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


@lru_cache(maxsize=1024)
def parseaddr(value: str) -> tuple[str, str]:
    """``email.utils.parseaddr``, remembered, and skipped for a bare ``local@domain`` (every
    subscriber's address: the ``email`` package takes a millisecond for each)."""
    if _BARE_ADDRESS.fullmatch(value):
        return "", value
    return _parseaddr(value)


def _address(value: str) -> str:
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


# Quoted-printable works line by line, so a line encodes the same wherever it stands. A digest
# run sends the same lines (the template's, and each paper's title, authors and summary) in
# thousands of mails: each distinct line is encoded once. Bounded: cleared when full.
_QP_LINES: dict[str, bytes] = {}
_QP_LINES_MAX = 100_000


def _qp_line(line: str) -> bytes:
    encoded = _QP_LINES.get(line)
    if encoded is None:
        encoded = binascii.b2a_qp((line + "\n").encode("utf-8"), istext=True)
        encoded = encoded.replace(b"\n", b"\r\n")  # soft line breaks too
        if len(_QP_LINES) >= _QP_LINES_MAX:
            _QP_LINES.clear()
        _QP_LINES[line] = encoded
    return encoded


def _qp(text: str) -> bytes:
    """``text`` as quoted-printable UTF-8 with CRLF line ends."""
    return b"".join([_qp_line(line) for line in text.splitlines() or [""]])


MAX_8BIT_LINE = 998  # RFC 5321: octets per line, CRLF excluded


def _body(text: str, eightbit: bool) -> tuple[str, bytes]:
    """The transfer encoding and bytes of one body part: 8bit (the text as it is, CRLF line
    ends) when allowed and every line fits SMTP's limit, else quoted-printable. 8bit is what
    servers with 8BITMIME prefer: a third of the lines and bytes of quoted-printable, and
    nothing to encode."""
    if eightbit and "\x00" not in text:
        lines = [line.encode("utf-8") for line in text.splitlines() or [""]]
        if all(len(line) <= MAX_8BIT_LINE for line in lines):
            if text.isascii():
                return "7bit", b"\r\n".join(lines) + b"\r\n"
            return "8bit", b"\r\n".join(lines) + b"\r\n"
    return "quoted-printable", _qp(text)


def headers_for(
    *,
    sender: str,
    to: str,
    subject: str,
    message_id: str,
    date: datetime,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
) -> list[tuple[str, str]]:
    out = [
        ("From", _address(sender)),
        ("To", _address(to)),
        ("Subject", _header(subject)),
        ("Date", format_datetime(date)),
        ("Message-ID", message_id),
        ("MIME-Version", "1.0"),
        ("Auto-Submitted", "auto-generated"),
    ]
    if list_id:
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        slug = "".join(ch if ch.isalnum() else "-" for ch in list_id.lower()).strip("-")
        out.append(("List-Id", f"{_header(list_id)} <{slug}.{domain}>"))
    if unsubscribe_url:
        out.append(("List-Unsubscribe", f"<{unsubscribe_url}>"))
        out.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return out


def build_raw(
    parts: MailParts,
    *,
    sender: str,
    to: str,
    message_id: str,
    date: datetime,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
    eightbit: bool = False,
) -> RawMail:
    """The multipart/alternative (plain text + HTML, UTF-8) message as bytes, built directly:
    the ``email`` package's header objects cost more than everything else in a digest run.
    Bodies are quoted-printable, or 8bit where ``eightbit`` (the server has 8BITMIME) and the
    lines fit. The tests parse what the SMTP server received with the ``email`` package."""
    head = headers_for(
        sender=sender,
        to=to,
        subject=parts.subject,
        message_id=message_id,
        date=date,
        list_id=list_id,
        unsubscribe_url=unsubscribe_url,
    )
    boundary = "=_paperradar_" + hashlib.sha1(message_id.encode()).hexdigest()[:24]
    head += list(parts.headers.items())
    head.append(("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
    chunks = [
        f"{k}: {v}".replace("\r\n", "\n").replace("\n", "\r\n").encode() + b"\r\n" for k, v in head
    ]
    chunks.append(b"\r\n")
    used_8bit = False
    for subtype, text in (("plain", parts.text), ("html", parts.html)):
        cte, body = _body(text, eightbit)
        used_8bit |= cte == "8bit"
        chunks.append(f"--{boundary}\r\n".encode())
        chunks.append(f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode())
        chunks.append(f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode())
        chunks.append(body)
    chunks.append(f"--{boundary}--\r\n".encode())
    return RawMail(
        parseaddr(sender)[1], parseaddr(to)[1] or to, b"".join(chunks), message_id, used_8bit
    )


def build_message(
    parts: MailParts,
    *,
    sender: str,
    to: str,
    message_id: str,
    date: datetime,
    list_id: str | None = None,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """The same message as an ``EmailMessage`` (for previews and one-off mails)."""
    msg = EmailMessage()
    for k, v in headers_for(
        sender=sender,
        to=to,
        subject=parts.subject,
        message_id=message_id,
        date=date,
        list_id=list_id,
        unsubscribe_url=unsubscribe_url,
    ):
        if k != "MIME-Version":
            msg[k] = v
    for k, v in parts.headers.items():
        msg[k] = v
    msg.set_content(parts.text, cte="quoted-printable")
    msg.add_alternative(parts.html, subtype="html", cte="quoted-printable")
    return msg
