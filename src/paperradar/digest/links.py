"""Links in mails: signed tokens on the web UI's subscription routes (``PAPERRADAR_BASE_URL``)."""

from __future__ import annotations

from urllib.parse import quote, quote_plus, urlencode

from paperradar.digest.tokens import TokenSigner
from paperradar.storage.base import Subscription

__all__ = ["Links"]


class Links:
    def __init__(self, base_url: str, signer: TokenSigner) -> None:
        self.base = base_url.rstrip("/")
        self.signer = signer

    def _url(self, path: str, **params: str) -> str:
        return f"{self.base}{path}?{urlencode(params)}"

    def _who(self, sub: Subscription) -> dict[str, object]:
        return {"s": sub.id, "e": sub.email}

    def confirm(self, sub: Subscription) -> str:
        token = self.signer.sign("confirm", self._who(sub))
        return self._url("/subscriptions/confirm", token=token)

    def manage_token(self, sub: Subscription) -> str:
        """Unsubscribe and preferences links: a compact HMAC token bound to the current address
        (no expiry — they must work from any old mail)."""
        return self.signer.compact("manage", [str(sub.id)], sub.email)

    def unsubscribe(self, sub: Subscription) -> str:
        return self._url("/subscriptions/unsubscribe", token=self.manage_token(sub))

    def preferences(self, sub: Subscription) -> str:
        return self._url("/subscriptions/preferences", token=self.manage_token(sub))

    def feedback(self, sub: Subscription, paper_id: str, value: int) -> str:
        token = self.signer.compact("feedback", [str(sub.id), str(value), paper_id], sub.email)
        # = self._url("/subscriptions/feedback", token=token), without urlencode's overhead
        # (two of these on every item of every mail)
        return f"{self.base}/subscriptions/feedback?token={quote_plus(token)}"

    def paper(self, paper_id: str) -> str:
        return f"{self.base}/paper/{quote(paper_id, safe='/:.')}"

    def outbound(self, paper_id: str, to: str) -> str:
        """Through ``/go``: records a reader click for trending, then redirects."""
        return self._url("/go", paper=paper_id, to=to)
