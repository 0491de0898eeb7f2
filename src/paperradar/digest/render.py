"""Mail rendering: Jinja2 templates shipped in the package (HTML with inline CSS, no script, no
remote images; plus plain text), assembled into a multipart message with Message-ID, Date,
List-Id and RFC 8058 one-click List-Unsubscribe headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import jinja2

__all__ = ["MailParts", "build_message", "render_mail", "summarize"]

_html = jinja2.Environment(
    loader=jinja2.PackageLoader("paperradar", "digest/templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_text = jinja2.Environment(
    loader=jinja2.PackageLoader("paperradar", "digest/templates"),
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
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


def _cte(text: str) -> str:
    ascii_short = text.isascii() and all(len(line) <= 998 for line in text.splitlines())
    return "7bit" if ascii_short else "quoted-printable"


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
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = parts.subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"
    if list_id:
        domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
        slug = "".join(ch if ch.isalnum() else "-" for ch in list_id.lower()).strip("-")
        msg["List-Id"] = f"{list_id} <{slug}.{domain}>"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for k, v in parts.headers.items():
        msg[k] = v
    # Naming the transfer encoding spares the content manager from encoding each part twice to
    # pick the shorter (quoted-printable stays readable and safe over any relay).
    msg.set_content(parts.text, cte=_cte(parts.text))
    msg.add_alternative(parts.html, subtype="html", cte=_cte(parts.html))
    return msg
