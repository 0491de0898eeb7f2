"""Subscribing with double opt-in, confirming, unsubscribing, preferences and feedback.

No address enumeration: ``request`` answers the same whatever state the address is in. Nothing
but a confirmation mail goes to an unconfirmed address; a confirmed one asking again gets a
short note with its preferences link (at most one mail per address per ``RESEND_AFTER``)."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from paperradar.config import Settings
from paperradar.digest.links import Links
from paperradar.digest.render import build_message, render_mail
from paperradar.digest.schedule import FREQUENCIES, InvalidSubscription, check_timezone
from paperradar.digest.smtp import SmtpSender
from paperradar.digest.tokens import InvalidToken, TokenSigner
from paperradar.storage import Storage
from paperradar.storage.base import Interests, Subscription

__all__ = ["Preferences", "SubscriptionDesk", "describe_interests"]

log = logging.getLogger(__name__)

RESEND_AFTER = timedelta(minutes=10)
EMAIL = re.compile(r"[^@\s<>\"',;]{1,64}@[^@\s<>\"',;]+\.[^@\s<>\"',;]+")
MAX_INTERESTS = 50


@dataclass(slots=True)
class Preferences:
    frequency: str = "daily"
    send_hour: int = 7
    timezone: str = "UTC"
    max_items: int = 20
    weekends: bool = True

    def check(self) -> Preferences:
        if self.frequency not in FREQUENCIES:
            raise InvalidSubscription(f"frequency {self.frequency!r}: use daily or weekly")
        if not 0 <= self.send_hour <= 23:
            raise InvalidSubscription(f"send hour {self.send_hour}: use 0 to 23 (local time)")
        if not 1 <= self.max_items <= 100:
            raise InvalidSubscription(f"max items {self.max_items}: use 1 to 100")
        check_timezone(self.timezone)
        return self


def describe_interests(it: Interests) -> str:
    parts = [f'"{q}"' for q in it.queries]
    parts += [f"cat:{c}" for c in it.categories]
    parts += [f"author:{a}" for a in it.authors]
    if it.follow:
        parts.append(f"{len(it.follow)} followed papers")
    if it.trending or not parts:
        parts.append("trending papers")
    return ", ".join(parts)


def check_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not EMAIL.fullmatch(email):
        raise InvalidSubscription(f"{email!r} is not an email address like you@example.org")
    return email.lower()


def _clean(values: list[str], limit: int = 1000) -> list[str]:
    return list(dict.fromkeys(v.strip()[:limit] for v in values if v.strip()))[:MAX_INTERESTS]


class SubscriptionDesk:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        signer: TokenSigner,
        sender: Callable[[], SmtpSender],
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.signer = signer
        self.links = Links(settings.base_url, signer)
        self._sender = sender

    def message_id(self, kind: str, sub: Subscription, stamp: str) -> str:
        domain = self.settings.mail_from.rpartition("@")[2].strip(" >") or "localhost"
        digest = hashlib.sha256(f"{kind}:{sub.id}:{stamp}".encode()).hexdigest()[:16]
        return f"<{kind}.{sub.id}.{digest}@{domain}>"

    # -- subscribe -------------------------------------------------------------------------------
    def request(
        self,
        email: str,
        interests: Interests,
        prefs: Preferences,
        *,
        now: datetime | None = None,
    ) -> str:
        """Record a subscription request and mail a confirmation (or, for a confirmed address, a
        note with its preferences link). The answer is the same in every case."""
        now = now or datetime.now(UTC)
        address = check_email(email)
        prefs.check()
        interests = Interests(
            queries=_clean(interests.queries),
            categories=_clean(interests.categories, 40),
            authors=_clean(interests.authors, 200),
            follow=_clean(interests.follow, 200),
            trending=interests.trending,
        )
        sub = self.storage.subscription_by_email(address)
        recent = sub is not None and sub.mailed is not None and now - sub.mailed < RESEND_AFTER
        if sub is None or sub.status in ("pending", "unsubscribed"):
            fresh = Subscription(
                id=sub.id if sub else 0,
                email=address,
                status="pending",
                interests=interests,
                frequency=prefs.frequency,
                send_hour=prefs.send_hour,
                timezone=prefs.timezone,
                max_items=prefs.max_items,
                weekends=prefs.weekends,
                mailed=sub.mailed if sub else None,
                last_digest=sub.last_digest if sub else None,
            )
            sub = self.storage.save_subscription(fresh)
            if not recent:
                self._send_confirmation(sub, now)
        elif not recent:  # active or paused: never changed by an unauthenticated request
            self._send_notice(sub, now)
        return (
            "Check your inbox: if this address can subscribe, a mail with a link to confirm it "
            "(or to change its preferences) is on its way."
        )

    def _deliver(self, sub: Subscription, template: str, subject: str, **ctx: object) -> None:
        parts = render_mail(template, subject, **ctx)
        msg = build_message(
            parts,
            sender=self.settings.mail_from,
            to=sub.email,
            message_id=self.message_id(template, sub, datetime.now(UTC).isoformat()),
            date=datetime.now(UTC),
        )
        with self._sender() as sender:
            sender.send(msg)

    def _send_confirmation(self, sub: Subscription, now: datetime) -> None:
        hours = self.settings.confirm_ttl_hours
        self._deliver(
            sub,
            "confirm",
            "Confirm your paperradar digest",
            heading="Confirm your paperradar digest",
            body=(
                f"Someone (hopefully you) asked to send a {sub.frequency} digest of research "
                f"papers to {sub.email}. Nothing will be sent unless you confirm."
            ),
            interests=describe_interests(sub.interests),
            action="Confirm the subscription",
            action_url=self.links.confirm(sub),
            footer=(
                f"The link works for {hours:g} hours. If you did not ask for this, ignore this "
                "mail: you will not hear from us again."
            ),
        )
        sub.mailed = now
        self.storage.save_subscription(sub)

    def _send_notice(self, sub: Subscription, now: datetime) -> None:
        self._deliver(
            sub,
            "confirm",
            "Your paperradar digest",
            heading="You are already subscribed",
            body=(
                f"Someone asked to subscribe {sub.email}, which already gets the paperradar "
                "digest. To add interests or change when it comes, open your preferences."
            ),
            interests=describe_interests(sub.interests),
            action="Open my preferences",
            action_url=self.links.preferences(sub),
            footer="If you did not ask for this, ignore this mail; nothing changed.",
        )
        sub.mailed = now
        self.storage.save_subscription(sub)

    # -- token-authorised actions ----------------------------------------------------------------
    def _from_token(
        self, purpose: str, token: str, max_age_s: float | None = None
    ) -> tuple[Subscription, dict[str, object]]:
        data = self.signer.verify(purpose, token, max_age_s=max_age_s)
        sid, email = data.get("s"), data.get("e")
        sub = self.storage.get_subscription(sid) if isinstance(sid, int) else None
        if sub is None or sub.email != email:
            raise InvalidToken("this link no longer matches a subscription: subscribe again")
        return sub, data

    def _managed(self, token: str) -> Subscription:
        found: dict[str, Subscription] = {}

        def email_of(fields: list[str]) -> str | None:
            sub = self.storage.get_subscription(int(fields[0])) if fields[0].isdigit() else None
            if sub is None or len(fields) != 1:
                return None
            found["sub"] = sub
            return sub.email

        self.signer.open_compact("manage", token, email_of)
        return found["sub"]

    def confirm(self, token: str, *, now: datetime | None = None) -> Subscription:
        """Activate a pending subscription (idempotent for an active one)."""
        sub, _ = self._from_token("confirm", token, self.settings.confirm_ttl_hours * 3600)
        if sub.status in ("pending", "paused"):
            sub.status = "active"
            sub.confirmed = now or datetime.now(UTC)
            sub.failures = 0
            sub = self.storage.save_subscription(sub)
        elif sub.status == "unsubscribed":
            raise InvalidToken("this subscription was cancelled: subscribe again to restart it")
        return sub

    def unsubscribe(self, token: str) -> Subscription:
        sub = self._managed(token)
        if sub.status != "unsubscribed":
            sub.status = "unsubscribed"
            sub = self.storage.save_subscription(sub)
        return sub

    def manage(self, token: str) -> Subscription:
        return self._managed(token)

    def update(
        self, token: str, interests: Interests, prefs: Preferences, *, active: bool = True
    ) -> Subscription:
        sub = self._managed(token)
        prefs.check()
        sub.interests = Interests(
            queries=_clean(interests.queries),
            categories=_clean(interests.categories, 40),
            authors=_clean(interests.authors, 200),
            follow=_clean(interests.follow, 200),
            trending=interests.trending,
        )
        sub.frequency, sub.send_hour, sub.timezone = (
            prefs.frequency,
            prefs.send_hour,
            prefs.timezone,
        )
        sub.max_items, sub.weekends = prefs.max_items, prefs.weekends
        if active and sub.confirmed is not None:
            sub.status = "active"
            sub.failures = 0
        elif not active:
            sub.status = "unsubscribed"
        return self.storage.save_subscription(sub)

    def feedback(
        self,
        token: str,
        *,
        paper: str | None = None,
        value: int | None = None,
        now: datetime | None = None,
    ) -> tuple[Subscription, str, int]:
        """A rating from a mail's link: the subscriber's rating token with ``paper`` and
        ``value``, or (links in older mails) one token carrying all three."""
        found: dict[str, Subscription] = {}

        def email_of(fields: list[str]) -> str | None:
            sub = self.storage.get_subscription(int(fields[0])) if fields[0].isdigit() else None
            if sub is None or len(fields) not in (1, 3):
                return None
            found["sub"] = sub
            return sub.email

        fields = self.signer.open_compact("feedback", token, email_of)
        if len(fields) == 3:
            _sid, rating, pid = fields
        else:
            rating, pid = str(value), paper or ""
            if not pid or self.storage.get_paper(pid) is None:
                raise InvalidToken("this feedback link names no known paper: use the mail's link")
        if rating not in ("1", "-1"):
            raise InvalidToken("this feedback link is not valid: use the link from the mail")
        sub = found["sub"]
        self.storage.set_feedback(sub.id, pid, int(rating), now or datetime.now(UTC))
        return sub, pid, int(rating)
