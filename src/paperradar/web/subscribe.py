"""Subscribing to a listing (email digest): one function shared by the form and the API.

Both call ``Engine.subscribe(email, queries=..., categories=..., **options)`` (501 on an engine
without it). The answer is the same whatever the address's state (no enumeration).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import Request

from paperradar.web.errors import BadParameter, SubscriptionsUnavailable
from paperradar.web.params import check_category
from paperradar.web.render import engine_of

__all__ = ["subscribe_with"]

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
MAX_QUERY = 1000


def subscribe_with(
    request: Request,
    email: str,
    queries: Sequence[str],
    categories: Sequence[str],
    **options: Any,
) -> object:
    """Subscribe through the engine when it offers subscriptions; say they are coming if not."""
    email = email.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise BadParameter("email", "give an email address like you@example.org")
    kept_queries = [q.strip()[:MAX_QUERY] for q in queries if q.strip()]
    kept_categories = [check_category(c, "categories") for c in categories if c.strip()]
    subscribe = getattr(engine_of(request), "subscribe", None)
    if subscribe is None:
        raise SubscriptionsUnavailable(
            "email digests are coming soon: this server cannot take subscriptions yet. "
            "Meanwhile, follow the RSS or Atom feed of this listing."
        )
    return subscribe(email, queries=kept_queries, categories=kept_categories, **options)
