"""The digest run: which digests are due, claim them in the ledger, compose, render, send,
record. See docs/digest.md for the exactly-once guarantee and its limits.

Per (subscription, period) the ledger row goes ``claimed`` → ``composed`` (the picked papers
stored, so a retry sends the same digest with the same Message-ID) → ``sent``; or back to
claimable after a temporary failure; or ``failed`` for that period after a permanent one.
A runner holds rows under a lease: a runner that dies (kill -9) leaves rows that the next run
takes over once the lease has run out.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup

from paperradar.config import Settings
from paperradar.digest.compose import Composer, DigestItem, Pool, build_pool
from paperradar.digest.links import Links
from paperradar.digest.render import (
    MailParts,
    RawMail,
    build_raw,
    render_fragment,
    render_mail,
    summarize,
)
from paperradar.digest.schedule import due_period, period_length
from paperradar.digest.smtp import PermanentFailure, RateLimit, SmtpSender, TemporaryFailure
from paperradar.digest.subscriptions import describe_interests
from paperradar.model import Paper
from paperradar.storage import Storage
from paperradar.storage.base import DigestClaim, Subscription

__all__ = ["DigestReport", "DigestRunner"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DigestReport:
    at: datetime
    dry_run: bool = False
    due: int = 0
    sent: int = 0
    already_sent: int = 0  # sent earlier in this period (by us or another runner)
    held_elsewhere: int = 0  # another live runner holds the row
    temporary_failures: int = 0  # will be retried by the next run
    permanent_failures: int = 0
    paused: int = 0
    smtp_unavailable: bool = False
    previews: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "dry_run": self.dry_run,
            "due": self.due,
            "sent": self.sent,
            "already_sent": self.already_sent,
            "held_elsewhere": self.held_elsewhere,
            "temporary_failures": self.temporary_failures,
            "permanent_failures": self.permanent_failures,
            "paused": self.paused,
            "smtp_unavailable": self.smtp_unavailable,
            "previews": self.previews,
            "errors": self.errors[:20],
        }


TrendingFn = Callable[[str, datetime], list[tuple[Paper, float]]]


@dataclass(frozen=True, slots=True)
class _PaperRow:
    """What every mail shows of one paper, rendered once per run (digest_paper.html/.txt)."""

    html: Markup
    text: str
    url: str
    pdf_url: str


@dataclass(frozen=True, slots=True)
class _Row:
    """One item of a mail, as the templates read it (attributes: Jinja's fast path)."""

    paper_html: Markup
    paper_text: str
    reasons: list[str]
    url: str
    pdf_url: str
    more_url: str
    less_url: str


class DigestRunner:
    def __init__(
        self,
        storage: Storage,
        settings: Settings,
        links: Links,
        *,
        composer: Callable[[Pool], Composer],
        trending: TrendingFn,
        sender: Callable[[RateLimit], SmtpSender],
        embed_model: str | None,
    ) -> None:
        self.storage = storage
        self.settings = settings
        self.links = links
        self._composer = composer
        self._trending = trending
        self._sender = sender
        self.embed_model = embed_model
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._rows: dict[str, _PaperRow] = {}  # per run: papers do not change during one

    def message_id(self, sub: Subscription, period: str) -> str:
        """Deterministic per (subscription, period): a re-send after a crash carries the same
        Message-ID, so receiving systems can recognise the duplicate."""
        domain = self.settings.mail_from.rpartition("@")[2].strip(" >") or "localhost"
        tag = self.links.signer.mac(f"digest:{sub.id}:{period}")
        return f"<digest.{sub.id}.{period}.{tag}@{domain}>"

    # -- what is due -----------------------------------------------------------------------------
    def due(self, at: datetime, subs: Sequence[Subscription]) -> list[tuple[Subscription, str]]:
        out = []
        for s in subs:
            period = due_period(
                at,
                frequency=s.frequency,
                send_hour=s.send_hour,
                timezone=s.timezone,
                weekends=s.weekends,
            )
            if period is not None:
                out.append((s, period))
        return out

    def since(self, sub: Subscription, at: datetime) -> datetime:
        return sub.last_digest or at - period_length(sub.frequency)

    def _composer_for(self, at: datetime, due: Sequence[tuple[Subscription, str]]) -> Composer:
        since = min((self.since(s, at) for s, _ in due), default=at)
        window = "week" if any(s.frequency == "weekly" for s, _ in due) else "day"
        trending = self._trending(window, at)
        extra = [pid for s, _ in due for pid in s.interests.follow]
        ratings = self.storage.feedback_for([s.id for s, _ in due])
        extra += [pid for r in ratings.values() for pid in r]
        pool = build_pool(
            self.storage,
            since=since,
            cap=self.settings.digest_candidate_cap,
            trending=trending,
            embed_model=self.embed_model,
            extra_ids=extra,
        )
        composer = self._composer(pool)
        composer.prefetch(
            [q for s, _ in due for q in s.interests.queries],
            [tuple(sorted(set(s.interests.follow))) for s, _ in due if s.interests.follow],
            workers=self.settings.digest_search_threads,
        )
        return composer

    # -- render ----------------------------------------------------------------------------------
    def _paper_row(self, p: Paper) -> _PaperRow:
        """What every mail shows of ``p`` (kept for the run: the same in every digest)."""
        row = self._rows.get(p.id)
        if row is None:
            names = p.author_names
            authors = ", ".join(names[:4]) + (" et al." if len(names) > 4 else "")
            meta = " · ".join(
                x
                for x in (
                    p.primary_category or (p.categories[0] if p.categories else ""),
                    p.published.date().isoformat() if p.published else "",
                )
                if x
            )
            fields = {
                "title": p.title,
                "authors": authors,
                "meta": meta,
                "summary": summarize(p.abstract),
                "url": self.links.paper(p.id),
            }
            row = _PaperRow(
                render_fragment("digest_paper.html", fields),
                render_fragment("digest_paper.txt", fields),
                fields["url"],
                self.links.outbound(p.id, "pdf") if p.links.get("pdf") else "",
            )
            self._rows[p.id] = row
        return row

    def render(
        self, sub: Subscription, period: str, items: Sequence[DigestItem], at: datetime
    ) -> MailParts:
        when = "this week" if sub.frequency == "weekly" else "today"
        rows = []
        for it in items:
            p = it.paper
            row = self._paper_row(p)
            rows.append(
                _Row(
                    row.html,
                    row.text,
                    it.reasons,
                    row.url,
                    row.pdf_url,
                    self.links.feedback(sub, p.id, 1),
                    self.links.feedback(sub, p.id, -1),
                )
            )
        n = len(rows)
        subject = f"paperradar: {n} paper{'s' if n != 1 else ''} for you {when} ({period})"
        return render_mail(
            "digest",
            subject,
            heading=f"Your papers {when}",
            intro=f"{n} picked for {sub.email} · {period}",
            items=rows,
            email=sub.email,
            interests=describe_interests(sub.interests),
            preferences_url=self.links.preferences(sub),
            unsubscribe_url=self.links.unsubscribe(sub),
            base_url=self.links.base,
        )

    def _message(
        self,
        sub: Subscription,
        claim_mid: str,
        parts: MailParts,
        at: datetime,
        *,
        eightbit: bool = False,
    ) -> RawMail:
        return build_raw(
            parts,
            sender=self.settings.mail_from,
            to=sub.email,
            message_id=claim_mid,
            date=at,
            list_id=self.settings.list_id,
            unsubscribe_url=self.links.unsubscribe(sub),
            eightbit=eightbit,
        )

    def _items_from_ledger(self, stored: list[dict[str, Any]]) -> list[DigestItem]:
        papers = {p.id: p for p in self.storage.get_papers([str(d["id"]) for d in stored])}
        return [
            DigestItem(papers[str(d["id"])], float(d.get("score", 0.0)), list(d["reasons"]))
            for d in stored
            if str(d["id"]) in papers
        ]

    # -- preview ---------------------------------------------------------------------------------
    def preview(self, sub: Subscription, at: datetime) -> MailParts:
        period = due_period(
            at, frequency=sub.frequency, send_hour=0, timezone=sub.timezone, weekends=True
        )
        period = period or at.date().isoformat()
        composer = self._composer_for(at, [(sub, period)])
        sent = self.storage.sent_paper_ids([sub.id])[sub.id]
        ratings = self.storage.feedback_for([sub.id])[sub.id]
        items = composer.compose(sub, since=self.since(sub, at), sent=sent, ratings=ratings)
        return self.render(sub, period, items, at)

    # -- the run ---------------------------------------------------------------------------------
    def run(self, at: datetime | None = None, *, dry_run: bool = False) -> DigestReport:
        at = at or datetime.now(UTC)
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        report = DigestReport(at=at, dry_run=dry_run)
        self._rows.clear()
        due = self.due(at, self.storage.list_subscriptions("active"))
        report.due = len(due)
        if not due:
            return report
        if dry_run:
            self._dry_run(at, due, report)
            return report
        composer: Composer | None = None
        rate = RateLimit(self.settings.smtp_rate_per_s)
        local = threading.local()
        senders: list[SmtpSender] = []
        lock = threading.Lock()
        stop = threading.Event()
        subs_by_id: dict[int, Subscription] = {}

        def sender() -> SmtpSender:
            found: SmtpSender | None = getattr(local, "sender", None)
            if found is None:
                found = self._sender(rate)
                local.sender = found
                with lock:
                    senders.append(found)
            return found

        def task(claim: DigestClaim, items: list[DigestItem] | None) -> tuple[str, str]:
            sub = subs_by_id[claim.subscription_id]
            if stop.is_set():
                self._release(claim, "the SMTP server became unavailable", permanent=False)
                return "temporary", ""
            try:
                if items is None:
                    raise TemporaryFailure("lost the lease on this digest before sending it")
                self._deliver(sub, claim, items, sender(), at)
                return "sent", ""
            except TemporaryFailure as exc:
                self._release(claim, str(exc), permanent=False)
                if exc.connection:
                    stop.set()
                return "temporary", f"{sub.email}: {exc}"
            except PermanentFailure as exc:
                self._release(claim, str(exc), permanent=True)
                fresh = self.storage.get_subscription(sub.id)
                paused = fresh is not None and fresh.status == "paused"
                return "paused" if paused else "permanent", f"{sub.email}: {exc}"

        def collect(futures: list[Future[tuple[str, str]]]) -> None:
            for fut in futures:
                outcome, error = fut.result()
                if outcome == "sent":
                    report.sent += 1
                elif outcome == "temporary":
                    report.temporary_failures += 1
                else:
                    report.permanent_failures += 1
                    report.paused += outcome == "paused"
                if error:
                    report.errors.append(error)

        size = max(1, self.settings.digest_batch)
        pending: list[Future[tuple[str, str]]] = []
        pool = ThreadPoolExecutor(max(1, self.settings.smtp_connections), "paperradar-smtp")
        try:
            for start in range(0, len(due), size):
                if stop.is_set():
                    break
                batch = due[start : start + size]
                subs = {s.id: s for s, _ in batch}
                subs_by_id.update(subs)
                claims = self.storage.claim_digests(
                    [(s.id, period, self.message_id(s, period)) for s, period in batch],
                    self.owner,
                    self.settings.digest_lease_s,
                    datetime.now(UTC),
                )
                self._count_unclaimed(batch, claims, report)
                if not claims:
                    continue
                if composer is None and any(c.items is None for c in claims):
                    composer = self._composer_for(at, due)
                ids = [c.subscription_id for c in claims]
                sent_before = self.storage.sent_paper_ids(ids)
                ratings = self.storage.feedback_for(ids)
                digests = self._compose_batch(claims, subs, composer, sent_before, ratings, at)
                # Send this batch while the next one is claimed and composed.
                submitted = [
                    pool.submit(task, claim, digests.get(claim.subscription_id)) for claim in claims
                ]
                collect(pending)
                pending = submitted
            collect(pending)
        finally:
            pool.shutdown(wait=True)
            for snd in senders:
                snd.close()
        report.smtp_unavailable = stop.is_set()
        return report

    def _count_unclaimed(
        self,
        batch: Sequence[tuple[Subscription, str]],
        claims: Sequence[DigestClaim],
        report: DigestReport,
    ) -> None:
        got = {(c.subscription_id, c.period) for c in claims}
        for s, period in batch:
            if (s.id, period) in got:
                continue
            rows = [r for r in self.storage.ledger(s.id) if r["period"] == period]
            if rows and rows[0]["state"] in ("sent", "failed"):
                report.already_sent += 1
            else:
                report.held_elsewhere += 1

    def _release(self, claim: DigestClaim, error: str, *, permanent: bool) -> None:
        self.storage.release_digest(
            claim.subscription_id,
            claim.period,
            self.owner,
            error,
            permanent=permanent,
            pause_after=self.settings.digest_pause_after,
        )

    def _compose_batch(
        self,
        claims: Sequence[DigestClaim],
        subs: dict[int, Subscription],
        composer: Composer | None,
        sent_before: dict[int, set[str]],
        ratings: dict[int, dict[str, int]],
        at: datetime,
    ) -> dict[int, list[DigestItem]]:
        """The digest of every claim: re-used from the ledger when an earlier attempt composed
        it, else composed now and stored (one transaction) before anything is sent."""
        out: dict[int, list[DigestItem]] = {}
        fresh: list[tuple[int, str, list[dict[str, Any]]]] = []
        for claim in claims:
            sub = subs[claim.subscription_id]
            if claim.items is not None:
                out[sub.id] = self._items_from_ledger(claim.items)
                continue
            assert composer is not None
            items = composer.compose(
                sub,
                since=self.since(sub, at),
                sent=sent_before.get(sub.id, set()),
                ratings=ratings.get(sub.id, {}),
            )
            out[sub.id] = items
            fresh.append(
                (
                    sub.id,
                    claim.period,
                    [
                        {"id": it.paper.id, "score": round(it.score, 6), "reasons": it.reasons}
                        for it in items
                    ],
                )
            )
        if fresh:
            saved = self.storage.save_digests(self.owner, fresh)
            for sub_id, _, _ in fresh:
                if sub_id not in saved:
                    del out[sub_id]
        return out

    def _deliver(
        self,
        sub: Subscription,
        claim: DigestClaim,
        items: list[DigestItem],
        sender: SmtpSender,
        at: datetime,
    ) -> None:
        parts = self.render(sub, claim.period, items, at)
        raw = self._message(
            sub, claim.message_id, parts, datetime.now(UTC), eightbit=sender.eightbit()
        )
        sender.send(raw)
        # The digest's time is the run's ``at``: the next digest's candidates start there, so a
        # paper first seen while this run was going is not missed.
        if not self.storage.finish_digest(
            sub.id, claim.period, self.owner, [it.paper.id for it in items], at
        ):
            log.error(
                "digest %s for %s was sent but its lease had run out: another runner may send "
                "it again (same Message-ID); raise digest_lease_s",
                claim.period,
                sub.email,
            )

    def _dry_run(
        self, at: datetime, due: Sequence[tuple[Subscription, str]], report: DigestReport
    ) -> None:
        composer = self._composer_for(at, due)
        ids = [s.id for s, _ in due]
        sent = self.storage.sent_paper_ids(ids)
        ratings = self.storage.feedback_for(ids)
        for sub, period in due:
            done = [r for r in self.storage.ledger(sub.id) if r["period"] == period]
            if done and done[0]["state"] in ("sent", "failed"):
                report.already_sent += 1
                continue
            items = composer.compose(
                sub, since=self.since(sub, at), sent=sent[sub.id], ratings=ratings[sub.id]
            )
            report.previews.append(
                {
                    "email": sub.email,
                    "period": period,
                    "items": [
                        {"id": it.paper.id, "title": it.paper.title, "reasons": it.reasons}
                        for it in items
                    ],
                }
            )
