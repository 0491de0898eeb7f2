"""Digests end to end over a real SQLite file and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from digest_corpus import (
    AT,
    EngineFactory,
    corpus,
    feedback_args,
    link,
    subscribe_confirmed,
    token_of,
)

from mailserver import MailServer
from paperradar.digest.tokens import InvalidToken
from paperradar.engine import Engine, make_engine
from paperradar.errors import PaperradarError
from paperradar.model import Paper


def _engine(make_eng: EngineFactory, **kw: object) -> Engine:
    eng = make_eng(**kw)
    eng.storage.write_papers(corpus(AT))
    return eng


def test_double_opt_in_sends_only_a_confirmation_until_confirmed(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    answer = eng.subscribe("ada@example.org", queries=["language model"])
    msgs = mail.recorder.to("ada@example.org")
    assert len(msgs) == 1 and "Confirm" in str(msgs[0]["Subject"])
    # Unconfirmed: a due run sends nothing to the address.
    assert eng.run_digests(at=AT).due == 0
    assert len(mail.recorder.to("ada@example.org")) == 1
    # Re-subscribing at once is idempotent: one row, no second mail, the same answer.
    assert eng.subscribe("ADA@example.org", queries=["language model"]) == answer
    assert len(eng.subscriptions()) == 1 and len(mail.recorder.to("ada@example.org")) == 1
    eng.confirm_subscription(token_of(link(msgs[0], "/subscriptions/confirm")))
    assert eng.subscriptions("active")[0].email == "ada@example.org"
    report = eng.run_digests(at=AT)
    assert report.sent == 1
    digest = mail.recorder.to("ada@example.org")[-1]
    assert "language" in digest.get_body(("plain",)).get_content().lower()  # type: ignore[union-attr]
    # A confirmed address asking again gets a note with its preferences link, same answer.
    eng.storage.save_subscription(
        eng.subscriptions()[0].__class__(**{**_fields(eng), "mailed": None})
    )
    assert eng.subscribe("ada@example.org", queries=["other"]) == answer
    note = mail.recorder.to("ada@example.org")[-1]
    assert "/subscriptions/preferences" in note.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert eng.subscriptions()[0].interests.queries == ["language model"]  # unchanged


def next_day(at: datetime) -> list[Paper]:
    """A fresh set of papers (new ids) first seen in the hours before ``at``."""
    papers = corpus(at)
    for p in papers:
        p.id = p.arxiv_id = "2607." + p.id.split(".")[1]
    return papers


def _fields(eng: Engine) -> dict[str, object]:
    sub = eng.subscriptions()[0]
    return {f: getattr(sub, f) for f in sub.__slots__}  # type: ignore[attr-defined]


def test_confirmation_link_expires(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng, confirm_ttl_hours=-1.0)
    eng.subscribe("late@example.org", categories=["cs.CL"])
    url = link(mail.recorder.to("late@example.org")[0], "/subscriptions/confirm")
    with pytest.raises(InvalidToken, match="expired"):
        eng.confirm_subscription(token_of(url))
    with pytest.raises(InvalidToken, match="not valid"):
        eng.confirm_subscription(token_of(url)[:-3] + "abc")


def test_digest_headers_links_and_reasons(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "bo@example.org", queries=["diffusion"], categories=["cs.CV"])
    assert eng.run_digests(at=AT).sent == 1
    msg = mail.recorder.to("bo@example.org")[-1]
    assert msg["Message-ID"].startswith("<digest.") and msg["Date"]
    assert msg["List-Id"] == "paperradar digest <paperradar-digest.paperradar.test>"
    assert msg["List-Unsubscribe"].startswith("<http://paperradar.test/subscriptions/unsubscribe?")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.is_multipart() and {p.get_content_type() for p in msg.iter_parts()} == {
        "text/plain",
        "text/html",
    }
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script" not in html and "<img" not in html and "style=" in html
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert 'Why: matches "diffusion"' in text and "Why: in cs.CV" in text
    assert "/subscriptions/feedback?token=" in text and "/subscriptions/unsubscribe" in text
    # Only papers matching the interests (plus truly trending ones) are picked.
    ledger = eng.storage.ledger(eng.subscriptions()[0].id)
    cats = {p.categories[0] for p in eng.storage.get_papers([i["id"] for i in ledger[0]["items"]])}
    assert cats <= {"cs.LG", "cs.CV", "cs.CL"}


def test_hostile_interests_are_escaped_in_the_mail(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    hostile = '<script>alert(1)</script> "language" <img src=x onerror=alert(2)>'
    subscribe_confirmed(eng, mail, "eve@example.org", queries=[hostile])
    assert eng.run_digests(at=AT).sent == 1
    html = mail.recorder.to("eve@example.org")[-1].get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_never_repeats_a_paper_and_daily_runs_once_per_day(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "cy@example.org", categories=["cs.CL"], max_items=5)
    assert eng.run_digests(at=AT).sent == 1
    again = eng.run_digests(at=AT + timedelta(hours=3))
    assert again.sent == 0 and again.already_sent == 1
    # The next day: new papers arrive; the digest has only new ones.
    nxt = AT + timedelta(days=1)
    eng.storage.write_papers(next_day(nxt))
    assert eng.run_digests(at=nxt).sent == 1
    first, second = (
        {i["id"] for i in row["items"]} for row in eng.storage.ledger(eng.subscriptions()[0].id)
    )
    assert first and second and not first & second


def test_weekly_goes_out_once_a_week_daily_every_day(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "daily@example.org", categories=["cs.LG"])
    subscribe_confirmed(eng, mail, "weekly@example.org", categories=["cs.LG"], frequency="weekly")
    monday = AT - timedelta(days=2)  # 2026-06-08, 07:30 UTC
    for day in range(7):
        eng.run_digests(at=monday + timedelta(days=day))
    digests = [m for m in mail.recorder.messages if str(m["Message-ID"]).startswith("<digest.")]
    assert sum(m["To"] == "daily@example.org" for m in digests) == 7
    weekly = [m for m in digests if m["To"] == "weekly@example.org"]
    assert len(weekly) == 1 and "2026-W24" in str(weekly[0]["Subject"])


def test_send_hour_in_the_subscriber_time_zone(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(
        eng, mail, "tokyo@example.org", categories=["cs.CL"], timezone="Asia/Tokyo", send_hour=9
    )
    # 23:30 UTC on 9 June is 08:30 on 10 June in Tokyo: not yet; 00:30 UTC is 09:30: due.
    assert eng.run_digests(at=AT.replace(day=9, hour=23)).due == 0
    report = eng.run_digests(at=AT.replace(hour=0))
    assert report.sent == 1
    assert "2026-06-10" in str(mail.recorder.to("tokyo@example.org")[-1]["Subject"])
    with pytest.raises(PaperradarError, match="time zone"):
        eng.subscribe("x@example.org", categories=["cs.CL"], timezone="Mars/Olympus")


def test_smtp_down_then_back_everyone_gets_exactly_one(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    people = [f"p{i}@example.org" for i in range(6)]
    for who in people:
        subscribe_confirmed(eng, mail, who, queries=["vision"])
    mail.stop()
    down = eng.run_digests(at=AT)
    assert down.smtp_unavailable and down.sent == 0 and down.temporary_failures == 6
    mail.restart()  # the same server comes back on the same port
    back = eng.run_digests(at=AT + timedelta(minutes=15))
    assert back.sent == 6
    assert eng.run_digests(at=AT + timedelta(minutes=30)).sent == 0
    for who in people:
        digests = [m for m in mail.recorder.to(who) if "digest." in str(m["Message-ID"])]
        assert len(digests) == 1, who


def test_permanent_failures_are_recorded_and_pause_the_subscription(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng, digest_pause_after=2)
    subscribe_confirmed(eng, mail, "gone@example.org", categories=["cs.CL"])
    subscribe_confirmed(eng, mail, "fine@example.org", categories=["cs.CL"])
    mail.recorder.reject["gone@example.org"] = "550 5.1.1 no such user"
    first = eng.run_digests(at=AT)
    assert first.permanent_failures == 1 and first.sent == 1
    assert eng.run_digests(at=AT + timedelta(hours=1)).permanent_failures == 0  # period given up
    second = eng.run_digests(at=AT + timedelta(days=1))
    assert second.permanent_failures == 1 and second.paused == 1
    gone = eng.storage.subscription_by_email("gone@example.org")
    assert gone is not None and gone.status == "paused" and "550" in (gone.last_error or "")
    assert eng.run_digests(at=AT + timedelta(days=2)).due == 1  # only fine@ now


def test_feedback_steers_the_next_digest(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "fb@example.org", authors=["Grace Hopper"], max_items=4)
    assert eng.run_digests(at=AT).sent == 1
    text = mail.recorder.to("fb@example.org")[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    more = [line.split(": ", 1)[1] for line in text.splitlines() if "More like this:" in line]
    sub, paper, value = eng.digest_feedback(*feedback_args(more[0]))
    assert value == 1 and paper is not None
    assert eng.storage.feedback_for([sub.id])[sub.id] == {paper.id: 1}
    eng.storage.write_papers(next_day(AT + timedelta(days=1)))
    preview = eng.preview_digest("fb@example.org", at=AT + timedelta(days=1))
    assert "like papers you follow or liked" in preview.text


def test_feedback_links_rate_only_known_papers_for_their_subscriber(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "fc@example.org", authors=["Grace Hopper"], max_items=4)
    assert eng.run_digests(at=AT).sent == 1
    text = mail.recorder.to("fc@example.org")[-1].get_body(("plain",)).get_content()  # type: ignore[union-attr]
    more = [line.split(": ", 1)[1] for line in text.splitlines() if "More like this:" in line]
    less = [line.split(": ", 1)[1] for line in text.splitlines() if "Less like this:" in line]
    token, paper, value = feedback_args(more[0])
    assert value == 1 and feedback_args(less[0]) == (token, paper, -1)
    assert {feedback_args(u)[0] for u in more + less} == {token}  # one token per mail
    with pytest.raises(InvalidToken, match="no known paper"):
        eng.digest_feedback(token, "2099.99999", 1)
    with pytest.raises(InvalidToken, match="not valid"):
        eng.digest_feedback(token, paper, 2)
    with pytest.raises(InvalidToken, match="not valid"):
        eng.digest_feedback(token[:-2] + "xx", paper, 1)
    # A link from a mail sent before per-mail tokens (paper and value inside the token).
    sub = eng.subscriptions()[0]
    old = eng.signer.compact("feedback", [str(sub.id), "-1", paper], sub.email)
    assert eng.digest_feedback(old)[2] == -1
    assert eng.storage.feedback_for([sub.id])[sub.id] == {paper: -1}


def test_unsubscribe_stops_digests(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "bye@example.org", categories=["cs.CL"])
    eng.run_digests(at=AT)
    url = link(mail.recorder.to("bye@example.org")[-1], "/subscriptions/unsubscribe")
    assert eng.unsubscribe(token_of(url)).status == "unsubscribed"
    assert eng.unsubscribe(token_of(url)).status == "unsubscribed"  # idempotent
    assert eng.run_digests(at=AT + timedelta(days=1)).due == 0


def test_dry_run_sends_and_records_nothing(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "dry@example.org", queries=["neurons"])
    report = eng.run_digests(at=AT, dry_run=True)
    assert report.due == 1 and report.sent == 0 and report.previews[0]["items"]
    reasons = [" ".join(i["reasons"]) for i in report.previews[0]["items"]]
    assert reasons and all("neurons" in r or r.startswith("trending (") for r in reasons)
    assert sum("neurons" in r for r in reasons) >= len(reasons) // 2
    assert eng.storage.ledger(eng.subscriptions()[0].id) == []
    assert eng.run_digests(at=AT).sent == 1


def test_non_ascii_survives_the_wire(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng, list_id="Digest für Forscher")
    title = "Schrödinger bridges für Diffusion — ein Überblick. " + "lang " * 40
    papers = corpus(AT, n_per_topic=1)
    papers[0].title = title
    papers[0].id = papers[0].arxiv_id = "2606.09999"
    eng.storage.write_papers(papers[:1])
    subscribe_confirmed(eng, mail, "uni@example.org", queries=["Schrödinger"])
    assert eng.run_digests(at=AT).sent == 1
    msg = mail.recorder.to("uni@example.org")[-1]
    assert msg["List-Id"].startswith("Digest für Forscher <")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert " ".join(title.split()) in text and "Schrödinger bridges für" in html


def test_followed_papers_bring_similar_ones_not_themselves(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    eng = _engine(make_eng)
    subscribe_confirmed(eng, mail, "fol@example.org", follow=["2606.00001"], max_items=5)
    assert eng.run_digests(at=AT).sent == 1
    row = eng.storage.ledger(eng.subscriptions()[0].id)[0]
    ids = [i["id"] for i in row["items"]]
    assert ids and "2606.00001" not in ids
    assert any("like papers you follow" in " ".join(i["reasons"]) for i in row["items"])
    picked = eng.storage.get_papers(ids)
    assert sum(p.categories == ["cs.CL"] for p in picked) >= len(picked) // 2


def test_bibtex_library_becomes_a_profile(make_eng: EngineFactory, mail: MailServer) -> None:
    eng = _engine(make_eng)
    bib = b"""@article{lm0,
  title = {Retrieval augmented language model 0 for question answering},
  author = {Hopper, Grace},
  eprint = {2606.00001},
  archivePrefix = {arXiv},
  year = {2026}
}
@misc{broken, title = }
"""
    eng.subscribe("bib@example.org", bibtex=bib)
    sub = eng.storage.subscription_by_email("bib@example.org")
    assert sub is not None and sub.interests.follow == ["2606.00001"]
    with pytest.raises(PaperradarError, match="BibTeX"):
        eng.subscribe("nobib@example.org", bibtex=b"not bibtex at all")


def test_enough_ratings_train_a_linear_model_on_embeddings(
    make_eng: EngineFactory, mail: MailServer
) -> None:
    import numpy as np

    eng = _engine(make_eng)
    topic_axis = {"cs.CL": 0, "cs.CV": 1, "cs.LG": 2, "q-bio.NC": 3}
    rng = np.random.default_rng(3)

    def embed(papers: list[Paper]) -> None:
        pks = eng.storage.pks_for_ids([p.id for p in papers])
        rows = []
        for p in papers:
            v = rng.normal(0, 0.05, 8).astype("<f4")
            v[topic_axis[p.categories[0]]] += 1.0
            rows.append((pks[p.id], "h", v.tobytes()))
        eng.storage.write_embeddings("default", rows)

    embed(corpus(AT))
    subscribe_confirmed(eng, mail, "ml@example.org", authors=["Grace Hopper"], max_items=6)
    sub = eng.subscriptions()[0]
    for i in range(1, 4):  # likes cs.CL (ids 1-8), dislikes cs.CV (ids 9-16)
        eng.storage.set_feedback(sub.id, f"2606.{i:05d}", 1, AT)
        eng.storage.set_feedback(sub.id, f"2606.{i + 8:05d}", -1, AT)
    tomorrow = AT + timedelta(days=1)
    fresh = next_day(tomorrow)
    eng.storage.write_papers(fresh)
    embed(fresh)
    assert eng.run_digests(at=tomorrow).sent == 1
    items = eng.storage.ledger(sub.id)[0]["items"]
    top = eng.storage.get_papers([i["id"] for i in items[:3]])
    assert all(p.categories == ["cs.CL"] for p in top)
    assert "fits your ratings" in items[0]["reasons"]
    assert not any(
        p.categories == ["cs.CV"] for p in eng.storage.get_papers([i["id"] for i in items])
    )


def _bodies(msg: EmailMessage) -> dict[str, tuple[str, str]]:
    return {
        part.get_content_type(): (str(part["Content-Transfer-Encoding"]), part.get_content())
        for part in msg.iter_parts()
    }


@pytest.mark.parametrize("server_8bit", [True, False])
def test_bodies_go_8bit_to_servers_with_8bitmime_else_quoted_printable(
    tmp_path: Path, server_8bit: bool
) -> None:
    """8bit bodies are a third of the lines of quoted-printable (less work on both ends); a
    server without 8BITMIME gets quoted-printable (lines too long for 8bit: test_render)."""
    server = MailServer(eightbit=server_8bit).start()
    eng = make_engine(
        str(tmp_path / "d.db"),
        data_dir=tmp_path / "data",
        smtp_url=server.url,
        base_url="http://paperradar.test",
        smtp_rate_per_s=0.0,
        search_mode="keyword",
    )
    try:
        papers = corpus(AT)
        papers[0].title = "Schrödinger bridges for diffusion · ünïcode"
        eng.storage.write_papers(papers)
        subscribe_confirmed(eng, server, "uni@example.org", queries=["diffusion"])
        assert eng.run_digests(at=AT).sent == 1
        msg = server.recorder.to("uni@example.org")[-1]
        options = server.recorder.mail_options[-1]
    finally:
        eng.close()
        server.stop()
    bodies = _bodies(msg)
    for _, content in bodies.values():
        assert "Schrödinger bridges for diffusion · ünïcode" in content
    if server_8bit:
        assert {cte for cte, _ in bodies.values()} == {"8bit"} and "BODY=8BITMIME" in options
    else:
        assert {cte for cte, _ in bodies.values()} == {"quoted-printable"}
        assert "BODY=8BITMIME" not in options
