"""Routes reached from mails: confirm, unsubscribe (RFC 8058 one-click POST), preferences and
"more / less like this" feedback, all authorised by a signed token in the link; and ``/go``,
which records a reader click for trending and redirects to the paper's link."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from paperradar.web.errors import BadParameter
from paperradar.web.render import engine_of, renderer_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Token = Annotated[str, Query(max_length=2000)]


def _page(request: Request, heading: str, message: str = "", **ctx: Any) -> Response:
    return renderer_of(request).page(
        "subscription.html", heading=heading, message=message, feeds={}, subscribe=None, **ctx
    )


async def _form(request: Request) -> dict[str, list[str]]:
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True)


@router.get("/subscriptions/confirm", response_class=HTMLResponse)
async def confirm(request: Request, token: Token) -> Response:
    sub = await run_in_threadpool(engine_of(request).confirm_subscription, token)
    return _page(
        request,
        "Subscription confirmed",
        f"{sub.email} will get its first {sub.frequency} digest at {sub.send_hour:02d}:00 "
        f"({sub.timezone}). Every mail has a link to change this or to unsubscribe.",
    )


@router.get("/subscriptions/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_ask(request: Request, token: Token) -> Response:
    """A link click only asks: mail scanners follow links, they do not press buttons."""
    sub = await run_in_threadpool(engine_of(request).subscription_for, token)
    return _page(
        request,
        "Unsubscribe?",
        f"Stop sending paperradar digests to {sub.email}.",
        mode="unsubscribe",
        sub=sub,
        token=token,
    )


@router.post("/subscriptions/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(request: Request, token: Annotated[str | None, Query()] = None) -> Response:
    """One-click (RFC 8058): mail clients POST ``List-Unsubscribe=One-Click`` to the header's
    URL (token in the query); the page's button posts the token in the form."""
    form = await _form(request)
    token = token or form.get("token", [""])[0]
    if not token:
        raise BadParameter("token", "use the unsubscribe link from a digest mail")
    sub = await run_in_threadpool(engine_of(request).unsubscribe, token)
    return _page(request, "Unsubscribed", f"{sub.email} will get no more digests.")


@router.get("/subscriptions/preferences", response_class=HTMLResponse)
async def preferences(request: Request, token: Token) -> Response:
    sub = await run_in_threadpool(engine_of(request).subscription_for, token)
    return _page(
        request,
        "Your digest",
        f"Preferences of {sub.email}.",
        mode="preferences",
        sub=sub,
        token=token,
        unsubscribe_url="/subscriptions/unsubscribe?" + urlencode({"token": token}),
    )


def _lines(form: dict[str, list[str]], name: str, split_spaces: bool = False) -> list[str]:
    raw = form.get(name, [""])[0]
    parts = raw.split() if split_spaces else raw.splitlines()
    return [p.strip() for p in parts if p.strip()]


@router.post("/subscriptions/preferences", response_class=HTMLResponse)
async def save_preferences(request: Request) -> Response:
    form = await _form(request)
    token = form.get("token", [""])[0]
    if not token:
        raise BadParameter("token", "use the preferences link from a digest mail")
    try:
        hour = int(form.get("send_hour", ["7"])[0])
        max_items = int(form.get("max_items", ["20"])[0])
    except ValueError as exc:
        raise BadParameter("send_hour", "give whole numbers for the hour and the count") from exc
    sub = await run_in_threadpool(
        lambda: engine_of(request).update_subscription(
            token,
            queries=_lines(form, "queries"),
            categories=_lines(form, "categories", split_spaces=True),
            authors=_lines(form, "authors"),
            follow=_lines(form, "follow"),
            trending=bool(form.get("trending")),
            frequency=form.get("frequency", ["daily"])[0],
            send_hour=hour,
            timezone=form.get("timezone", ["UTC"])[0].strip() or "UTC",
            max_items=max_items,
            weekends=bool(form.get("weekends")),
            active=bool(form.get("active")),
        )
    )
    return _page(
        request,
        "Preferences saved",
        f"{sub.email}: {sub.frequency} at {sub.send_hour:02d}:00 ({sub.timezone})"
        + ("" if sub.status != "unsubscribed" else " — digests are off"),
    )


@router.get("/subscriptions/feedback", response_class=HTMLResponse)
async def digest_feedback(
    request: Request,
    token: Token,
    paper: Annotated[str | None, Query(max_length=300)] = None,
    value: Annotated[int | None, Query(ge=-1, le=1)] = None,
) -> Response:
    sub, paper_found, rated = await run_in_threadpool(
        engine_of(request).digest_feedback, token, paper, value
    )
    what = "more" if rated > 0 else "fewer"
    title = f"“{paper_found.title}”" if paper_found else "that paper"
    return _page(
        request,
        "Thanks",
        f"Noted: {sub.email} will get {what} papers like {title} in coming digests.",
    )


@router.get("/go")
async def go(
    request: Request,
    paper: Annotated[str, Query(max_length=300)],
    to: Annotated[str, Query(pattern="^(abs|pdf|code|project|html)$")] = "abs",
) -> Response:
    """Record a click on a paper (trending signal), then redirect to its link."""
    engine = engine_of(request)
    found = await run_in_threadpool(engine.paper, paper)
    await run_in_threadpool(engine.record_event, found.id, "click")
    known = {"abs": found.abs_url, "pdf": found.pdf_url}
    link = known.get(to) or found.links.get(to) or found.abs_url
    if not link or not link.startswith(("https://", "http://")):
        link = f"/paper/{found.id}"
    return RedirectResponse(link, status_code=302)
