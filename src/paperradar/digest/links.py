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
        self._rating: tuple[int, str, str] | None = None  # the last subscriber's token

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
        """A "more / less like this" link: the subscriber's rating token (one per mail, not
        one per link: two of these are on every item of every mail) plus the paper and value.
        The token lets its holder rate papers for that subscriber only."""
        cached = self._rating
        if cached is None or cached[0] != sub.id or cached[1] != sub.email:
            cached = (sub.id, sub.email, quote_plus(self.rating_token(sub)))
            self._rating = cached
        return (
            f"{self.base}/subscriptions/feedback?token={cached[2]}"
            f"&paper={quote_plus(paper_id)}&value={value}"
        )

    def rating_token(self, sub: Subscription) -> str:
        return self.signer.compact("feedback", [str(sub.id)], sub.email)

    def paper(self, paper_id: str) -> str:
        return f"{self.base}/paper/{quote(paper_id, safe='/:.')}"

    def outbound(self, paper_id: str, to: str) -> str:
        """Through ``/go``: records a reader click for trending, then redirects."""
        return self._url("/go", paper=paper_id, to=to)
