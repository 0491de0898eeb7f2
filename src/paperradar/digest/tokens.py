"""Signed tokens for links in mails (confirm, unsubscribe, preferences, feedback): HMAC through
itsdangerous, keyed by ``PAPERRADAR_SECRET_KEY`` — or a key generated once and stored in the data
directory when that is unset. No login: holding the link is the authorisation."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from paperradar.errors import ConfigError, PaperradarError

__all__ = ["InvalidToken", "TokenSigner", "load_or_create_secret"]

KEY_FILE = "secret_key"


class InvalidToken(PaperradarError):
    """A link token that is forged, mangled or expired."""


def load_or_create_secret(configured: str, data_dir: Path) -> str:
    """``configured`` when set; else the key in ``data_dir/secret_key``, created (mode 0600) on
    first use so that links keep working across restarts."""
    if configured:
        return configured
    path = data_dir / KEY_FILE
    try:
        if path.exists():
            key = path.read_text().strip()
            if key:
                return key
        data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
        return key
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read or create the signing key {path}: {exc}; set PAPERRADAR_SECRET_KEY"
        ) from exc


class TokenSigner:
    """Signs small JSON payloads per purpose (a token for one purpose is void for another)."""

    def __init__(self, key: str) -> None:
        self._key = key
        # Keyed once; each MAC copies it (a digest run signs two links per item of every mail).
        self._keyed = hmac.new(key.encode(), digestmod=hashlib.sha256)

    def mac(self, text: str, length: int = 12) -> str:
        """A deterministic keyed digest of ``text`` (hex), e.g. for stable Message-IDs."""
        h = self._keyed.copy()
        h.update(text.encode())
        return h.hexdigest()[:length]

    def compact(self, purpose: str, fields: Sequence[str], bound: str) -> str:
        """A short token carrying ``fields``, its MAC also covering ``bound`` (a value the
        verifier looks up, e.g. the subscription's current address) — cheap enough to put on
        every item of every mail."""
        body = base64.urlsafe_b64encode("\x1f".join(fields).encode()).decode().rstrip("=")
        return body + "." + self.mac("\x1e".join((purpose, bound, body)), 24)

    def open_compact(
        self, purpose: str, token: str, bound_of: Callable[[list[str]], str | None]
    ) -> list[str]:
        """The fields of a ``compact`` token; InvalidToken unless its MAC matches."""
        body, _, tag = token.partition(".")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            raise InvalidToken("this link is not valid: use the link from the mail") from exc
        fields = raw.split("\x1f")
        bound = bound_of(fields)
        good = bound is not None and hmac.compare_digest(
            tag, self.mac("\x1e".join((purpose, bound, body)), 24)
        )
        if not good:
            raise InvalidToken("this link is not valid (mangled or not ours): use the mail's link")
        return fields

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        return URLSafeTimedSerializer(self._key, salt=f"paperradar.{purpose}").dumps(payload)

    def verify(self, purpose: str, token: str, *, max_age_s: float | None = None) -> dict[str, Any]:
        s = URLSafeTimedSerializer(self._key, salt=f"paperradar.{purpose}")
        try:
            data = s.loads(token, max_age=int(max_age_s) if max_age_s is not None else None)
        except SignatureExpired as exc:
            raise InvalidToken(
                "this link has expired: subscribe again to get a fresh confirmation mail"
            ) from exc
        except BadSignature as exc:
            raise InvalidToken(
                "this link is not valid (mangled or not ours): use the link from the mail"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidToken("this link is not valid: use the link from the mail")
        return data
