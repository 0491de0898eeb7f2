"""Mail encoding: the line-cached quoted-printable encoder is byte-for-byte the standard one."""

from __future__ import annotations

import binascii
import email
import email.policy
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from paperradar.digest.render import MailParts, _qp, build_raw

PIECES = [
    "a",
    " ",
    "\t",
    "=",
    "·",
    "é",
    "日本",
    "\u202e",
    "x" * 90,
    "\n",
    "\r\n",
    "\r",
    ".",
    "\x0c",
]


def reference_qp(text: str) -> bytes:
    body = "\n".join(text.splitlines()) + "\n"
    return binascii.b2a_qp(body.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")


@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=30), max_size=40).map("".join))
def test_cached_lines_encode_exactly_like_the_whole_body(text: str) -> None:
    assert _qp(text) == reference_qp(text)
    assert _qp(text) == reference_qp(text)  # the second time from the cache
    # Lines stay far inside SMTP's limit (the standard encoder itself can exceed 76 octets by a
    # few when a soft break meets multi-byte escapes).
    assert all(len(line) <= 998 for line in _qp(text).split(b"\r\n"))


def test_a_mail_decodes_back_to_its_parts() -> None:
    long_line = "Why: " + "matches “protein folding” = yes · " * 12
    parts = MailParts(
        subject="paperradar: 2 papers",
        text=f"Hello\n{long_line}\ntrailing space \n\nend",
        html=f'<p style="margin:0">{long_line}</p>\n<p>ünïcode</p>',
    )
    raw = build_raw(
        parts,
        sender="paperradar <digest@example.org>",
        to="reader@example.org",
        message_id="<m1@example.org>",
        date=datetime(2026, 12, 1, tzinfo=UTC),
    )
    msg = email.message_from_bytes(raw.data, policy=email.policy.default)
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == parts.text
    assert html.get_content().replace("\r\n", "\n") == parts.html


def test_8bit_bodies_fall_back_per_part_when_a_line_is_too_long() -> None:
    parts = MailParts(
        subject="s",
        text="Schrödinger · short lines\nonly",
        html="<p>" + "w" * 4000 + "</p>\n<p>ünï</p>",  # a hostile 4 KB word in a title
    )
    raw = build_raw(
        parts,
        sender="digest@example.org",
        to="reader@example.org",
        message_id="<m2@example.org>",
        date=datetime(2026, 12, 1, tzinfo=UTC),
        eightbit=True,
    )
    msg = email.message_from_bytes(raw.data, policy=email.policy.default)
    ctes = {p.get_content_type(): str(p["Content-Transfer-Encoding"]) for p in msg.iter_parts()}
    assert ctes == {"text/plain": "8bit", "text/html": "quoted-printable"} and raw.eightbit
    assert max(len(line) for line in raw.data.split(b"\r\n")) <= 998
    html = msg.get_body(("html",))
    assert html is not None and "w" * 4000 in html.get_content()
    ascii_only = build_raw(
        MailParts("s", "plain ascii", "<p>ascii</p>"),
        sender="digest@example.org",
        to="reader@example.org",
        message_id="<m3@example.org>",
        date=datetime(2026, 12, 1, tzinfo=UTC),
        eightbit=True,
    )
    assert b"Content-Transfer-Encoding: 7bit" in ascii_only.data and not ascii_only.eightbit
