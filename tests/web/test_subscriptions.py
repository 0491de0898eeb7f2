"""The subscribe form and API, and the routes reached from mails (confirm, one-click
unsubscribe, preferences, feedback, /go), on a real SQLite db with a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from digest.digest_corpus import AT, corpus, link, token_of
from mailserver import MailServer
from paperradar.engine import Engine, make_engine
from paperradar.web import create_app


@pytest.fixture
def mail() -> Iterator[MailServer]:
    server = MailServer().start()
    yield server
    server.stop()


@pytest.fixture
def eng(tmp_path: Path, mail: MailServer) -> Iterator[Engine]:
    e = make_engine(
        str(tmp_path / "web-subs.db"),
        data_dir=tmp_path / "data",
        smtp_url=mail.url,
        base_url="http://testserver",
        rate_limit_per_minute=0,
        smtp_rate_per_s=0.0,
        search_mode="keyword",
    )
    e.storage.write_papers(corpus(AT))
    yield e
    e.close()


@pytest.fixture
def client(eng: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(eng)) as c:
        yield c


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_form_then_confirm_link_activates(
    client: TestClient, eng: Engine, mail: MailServer
) -> None:
    r = client.post("/subscribe", data={"email": "ada@example.org", "q": "vision", "cat": ""})
    assert r.status_code == 200 and "Check your inbox" in r.text
    msgs = mail.recorder.to("ada@example.org")
    assert len(msgs) == 1
    confirm = client.get(path_of(link(msgs[0], "/subscriptions/confirm")))
    assert confirm.status_code == 200 and "confirmed" in confirm.text
    assert [s.email for s in eng.subscriptions("active")] == ["ada@example.org"]
    bad = client.get("/subscriptions/confirm", params={"token": "forged.token.here"})
    assert bad.status_code == 400 and "not valid" in bad.text


def test_api_answers_the_same_for_new_pending_and_confirmed(
    client: TestClient, eng: Engine, mail: MailServer
) -> None:
    body = {"email": "bo@example.org", "queries": ["diffusion"], "timezone": "Europe/Paris"}
    new = client.post("/api/v1/subscriptions", json=body)
    pending = client.post("/api/v1/subscriptions", json=body)
    eng.confirm_subscription(
        token_of(link(mail.recorder.to("bo@example.org")[0], "/subscriptions/confirm"))
    )
    confirmed = client.post("/api/v1/subscriptions", json=body)
    assert new.status_code == pending.status_code == confirmed.status_code == 201
    assert new.json() == pending.json() == confirmed.json()
    sub = eng.storage.subscription_by_email("bo@example.org")
    assert sub is not None and sub.timezone == "Europe/Paris"
    bad_tz = client.post("/api/v1/subscriptions", json={**body, "timezone": "Nowhere/City"})
    assert bad_tz.status_code == 400 and "time zone" in bad_tz.text


def test_one_click_unsubscribe_post(client: TestClient, eng: Engine, mail: MailServer) -> None:
    eng.subscribe("cy@example.org", categories=["cs.CL"])
    eng.confirm_subscription(
        token_of(link(mail.recorder.to("cy@example.org")[0], "/subscriptions/confirm"))
    )
    assert eng.run_digests(at=AT).sent == 1
    digest = mail.recorder.to("cy@example.org")[-1]
    header = str(digest["List-Unsubscribe"]).strip("<>")
    # GET only asks (scanners follow links); nothing changes.
    ask = client.get(path_of(header))
    assert ask.status_code == 200 and 'method="post"' in ask.text
    assert eng.subscriptions("active")
    # RFC 8058: the mail client POSTs List-Unsubscribe=One-Click to the header's URL.
    r = client.post(
        path_of(header),
        content="List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and "Unsubscribed" in r.text
    assert eng.storage.subscription_by_email("cy@example.org").status == "unsubscribed"  # type: ignore[union-attr]
    assert eng.run_digests(at=AT.replace(day=11)).due == 0


def test_preferences_page_changes_the_digest(
    client: TestClient, eng: Engine, mail: MailServer
) -> None:
    eng.subscribe("dee@example.org", categories=["cs.CL"])
    eng.confirm_subscription(
        token_of(link(mail.recorder.to("dee@example.org")[0], "/subscriptions/confirm"))
    )
    eng.run_digests(at=AT)
    url = link(mail.recorder.to("dee@example.org")[-1], "/subscriptions/preferences")
    page = client.get(path_of(url))
    assert page.status_code == 200 and "cs.CL" in page.text
    r = client.post(
        "/subscriptions/preferences",
        data={
            "token": token_of(url),
            "queries": "neurons\n<script>x</script>",
            "categories": "q-bio.NC cs.CV",
            "frequency": "weekly",
            "send_hour": "9",
            "timezone": "Asia/Tokyo",
            "max_items": "5",
            "active": "1",
        },
    )
    assert r.status_code == 200 and "weekly" in r.text
    sub = eng.storage.subscription_by_email("dee@example.org")
    assert sub is not None and sub.frequency == "weekly" and sub.timezone == "Asia/Tokyo"
    assert sub.interests.categories == ["q-bio.NC", "cs.CV"] and not sub.weekends
    again = client.get(path_of(url)).text
    assert "&lt;script&gt;x&lt;/script&gt;" in again and "<script>x" not in again


def test_feedback_link_and_click_tracking(
    client: TestClient, eng: Engine, mail: MailServer
) -> None:
    eng.subscribe("eli@example.org", queries=["language model"])
    eng.confirm_subscription(
        token_of(link(mail.recorder.to("eli@example.org")[0], "/subscriptions/confirm"))
    )
    eng.run_digests(at=AT)
    less = link(mail.recorder.to("eli@example.org")[-1], "/subscriptions/feedback")
    r = client.get(path_of(less))
    assert r.status_code == 200 and "Noted" in r.text
    sub = eng.storage.subscription_by_email("eli@example.org")
    assert sub is not None and list(eng.storage.feedback_for([sub.id])[sub.id].values()) == [1]
    go = client.get("/go", params={"paper": "2606.00001", "to": "abs"}, follow_redirects=False)
    assert go.status_code == 302 and go.headers["location"] == "https://arxiv.org/abs/2606.00001"
    assert eng.storage.event_counts(AT.replace(year=2000))["2606.00001"] == {"click": 1}
