"""The digest tests' corpus and mail helpers (papers first seen relative to a run time)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mailserver import MailServer
from paperradar.engine import Engine
from paperradar.model import Author, Paper

# A Wednesday; papers are first seen in the 20 hours before 07:00 UTC.
AT = datetime(2026, 6, 10, 7, 30, tzinfo=UTC)

TOPICS = [
    ("cs.CL", "language model", "Retrieval augmented language model {i} for question answering"),
    ("cs.CV", "vision", "Masked image vision transformer {i} for segmentation"),
    ("cs.LG", "diffusion", "Score based diffusion sampler {i} with fewer steps"),
    ("q-bio.NC", "neurons", "Spiking neurons {i} in cortical circuits"),
]


def corpus(at: datetime, n_per_topic: int = 8, *, hours_before: float = 20.0) -> list[Paper]:
    out = []
    k = 0
    for cat, word, title in TOPICS:
        for i in range(n_per_topic):
            k += 1
            seen = at - timedelta(hours=hours_before * (k / (len(TOPICS) * n_per_topic)))
            out.append(
                Paper(
                    id=f"2606.{k:05d}",
                    arxiv_id=f"2606.{k:05d}",
                    title=title.format(i=i),
                    abstract=f"We study {word} problems; variant {i} improves on {word} baselines.",
                    authors=[Author(f"Author {cat} {i % 3}"), Author("Grace Hopper")],
                    categories=[cat],
                    primary_category=cat,
                    published=seen,
                    first_seen=seen,
                    upvotes=(i * 7) % 23 if cat == "cs.CL" else None,
                    links={"abs": f"https://arxiv.org/abs/2606.{k:05d}"},
                    sources=["arxiv_api"],
                )
            )
    return out


EngineFactory = Callable[..., Engine]


def link(msg: EmailMessage, path: str) -> str:
    """The first link to ``path`` in a mail's plain-text part."""
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    m = re.search(r"(https?://\S*" + re.escape(path) + r"\S*)", text)
    assert m, f"no {path} link in:\n{text}"
    return m.group(1)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def feedback_args(url: str) -> tuple[str, str, int]:
    """(token, paper, value) of a mail's "more / less like this" link."""
    q = parse_qs(urlsplit(url).query)
    return q["token"][0], q["paper"][0], int(q["value"][0])


def subscribe_confirmed(eng: Engine, mail: MailServer, email: str, **kwargs: Any) -> None:
    """Subscribe through the engine and follow the confirmation link from the real mail."""
    before = len(mail.recorder.to(email))
    eng.subscribe(email, **kwargs)
    msgs = mail.recorder.to(email)
    assert len(msgs) == before + 1
    eng.confirm_subscription(token_of(link(msgs[-1], "/subscriptions/confirm")))
