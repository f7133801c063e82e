"""Instagram in: a clinic connects its account; Meta's handshake; signed DMs become leads and replies
(through the API, a real worker and the Graph stand-in)."""

from __future__ import annotations

from tests.automation.outreachkit import enroll, enrollments, make_sequence, sms
from tests.instagram.kit import VERIFY_TOKEN, WEBHOOK, connect, dm, inbound_of
from tests.workers import thread_worker, wait_for

ACCOUNT = "17841400000000001"
FAMILY = "1790000000000042"


def test_an_admin_connects_the_account_and_never_sees_the_token_again(client, db, tenant, graph, make_tenant):
    shown = connect(client, tenant, graph, ACCOUNT, token="IGQWR-secret-abcd")
    assert shown["account_id"] == ACCOUNT
    assert shown["access_token"] == "****abcd"
    assert shown["connected_at"] and shown["last_used_at"] is None
    got = client.get("/api/integrations/instagram", headers=tenant.headers()).get_json()
    assert got == shown
    with db.engine.connect() as conn:  # stored encrypted, like PHI
        stored = conn.exec_driver_sql("SELECT access_token FROM instagram_accounts").scalar_one()
    assert "IGQWR-secret-abcd" not in stored
    # Only admins configure; another clinic sees none, and cannot take the account.
    assert client.get("/api/integrations/instagram", headers=tenant.headers("front_desk")).status_code == 403
    other = make_tenant("Elsewhere")
    assert client.get("/api/integrations/instagram", headers=other.headers()).status_code == 404
    assert client.delete("/api/integrations/instagram", headers=other.headers()).status_code == 404
    taken = connect(client, other, graph, ACCOUNT, expect=409)
    assert ACCOUNT in str(taken["errors"]["account_id"])
    bad = client.put(
        "/api/integrations/instagram",
        json={"account_id": "x1", "access_token": "short"},
        headers=tenant.headers(),
    )
    assert bad.status_code == 422 and {"account_id", "access_token"} <= set(bad.get_json()["errors"]["json"])
    assert client.delete("/api/integrations/instagram", headers=tenant.headers()).status_code == 204
    assert client.get("/api/integrations/instagram", headers=tenant.headers()).status_code == 404
    connect(client, other, graph, ACCOUNT)  # free again


def put_account(client, tenant, account_id: str, token: str):
    return client.put(
        "/api/integrations/instagram",
        json={"account_id": account_id, "access_token": token},
        headers=tenant.headers(),
    )


def test_only_a_token_meta_says_is_the_accounts_connects_it(client, db, tenant, graph, make_tenant):
    """Issue 73: a made-up token, or another account's real one, cannot take an account's DMs; not
    before its clinic connects it, nor while it reconnects."""
    other = make_tenant("Elsewhere")
    graph.accounts["17841400000000777"] = "IGQWR-token-of-the-other-clinic"
    for token in ("not-a-real-token", "IGQWR-token-of-the-other-clinic"):
        refused = put_account(client, other, ACCOUNT, token)
        assert refused.status_code == 422, refused.get_json()
        assert list(refused.get_json()["errors"]["json"]) == ["access_token"]
    assert client.get("/api/integrations/instagram", headers=other.headers()).status_code == 404
    connect(client, tenant, graph, ACCOUNT)  # the account's own clinic, with its own token
    assert client.delete("/api/integrations/instagram", headers=tenant.headers()).status_code == 204
    assert put_account(client, other, ACCOUNT, "not-a-real-token").status_code == 422  # mid-reconnect
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family"}
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="hello")
    assert len(inbound_of(db, tenant.id)) == 1 and inbound_of(db, other.id) == []


def test_meta_unable_to_say_whose_the_token_is_is_a_503_that_changes_nothing(client, tenant, graph):
    connect(client, tenant, graph, ACCOUNT, token="IGQWR-first-1111")
    graph.accounts[ACCOUNT] = "IGQWR-second-2222"
    for failure in [(500, 1), (400, 4)]:  # Graph failing; Graph's "application request limit reached"
        graph.fail_token_checks = [failure]
        failed = put_account(client, tenant, ACCOUNT, "IGQWR-second-2222")
        assert failed.status_code == 503 and failed.headers["Retry-After"], failed.get_json()
    graph.stop()  # Meta unreachable
    failed = put_account(client, tenant, ACCOUNT, "IGQWR-second-2222")
    assert failed.status_code == 503, failed.get_json()
    shown = client.get("/api/integrations/instagram", headers=tenant.headers()).get_json()
    assert shown["access_token"] == "****1111"


def test_the_subscription_handshake(client, graph):
    args = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1158201444"}
    answer = client.get(WEBHOOK, query_string=args)
    assert answer.status_code == 200 and answer.get_data(as_text=True) == "1158201444"
    assert answer.mimetype == "text/plain"
    assert client.get(WEBHOOK, query_string={**args, "hub.verify_token": "guess"}).status_code == 403
    assert client.get(WEBHOOK, query_string={**args, "hub.mode": "unsubscribe"}).status_code == 403


def test_a_dm_from_a_new_user_becomes_an_instagram_lead_with_a_speed_to_lead_task(
    app, client, db, tenant, graph, make_tenant
):
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family", "name": "Maria Lopez"}
    with thread_worker(app):
        mid = dm(client, account_id=ACCOUNT, igsid=FAMILY, text="Hi! Do you do Invisalign for teens?")
        dm(client, account_id=ACCOUNT, igsid=FAMILY, mid=mid)  # Meta delivers it again
        [row] = inbound_of(db, tenant.id)
        lead_id = row.lead_id
        tasks = wait_for(
            lambda: client.get(f"/api/leads/{lead_id}/tasks", headers=tenant.headers()).get_json(), timeout=60
        )
    lead = client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
    assert (lead["first_name"], lead["last_name"]) == ("Maria", "Lopez")
    sources = client.get("/api/lead-sources", headers=tenant.headers()).get_json()
    assert {s["id"]: s["name"] for s in sources}[lead["source_id"]] == "Instagram"
    assert [(t["title"], t["type"]) for t in tasks] == [("Initial contact", "CALL")]
    timeline = client.get(f"/api/leads/{lead_id}/activities", headers=tenant.headers()).get_json()
    dms = [a for a in _items(timeline) if a["type"] == "DIRECT_MESSAGE"]
    assert len(dms) == 1 and dms[0]["direction"] == "INBOUND"
    assert dms[0]["notes"] == "Hi! Do you do Invisalign for teens?"
    shown = client.get("/api/integrations/instagram", headers=tenant.headers()).get_json()
    assert shown["last_used_at"] is not None  # the profile was read with the clinic's token
    # Who they are on Instagram, and until when the clinic may write (front desk reads it too).
    contact = client.get(f"/api/leads/{lead_id}/instagram", headers=tenant.headers("front_desk")).get_json()
    assert (contact["handle"], contact["igsid"]) == ("lopez.family", FAMILY)
    assert (
        contact["automated_until"] > contact["last_inbound_at"]
        and contact["reply_until"] > contact["automated_until"]
    )
    assert (
        client.get(f"/api/leads/{lead_id}/instagram", headers=make_tenant("Elsewhere").headers()).status_code
        == 404
    )
    # Their next DM is a reply on the same lead, not a new lead.
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="Also, do you take insurance?")
    assert [r.lead_id for r in inbound_of(db, tenant.id)] == [lead_id, lead_id]


def test_a_dm_stops_the_leads_sequence_like_a_reply(app, client, db, tenant, graph):
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family"}
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="hello")
    [row] = inbound_of(db, tenant.id)
    sequence = make_sequence(client, tenant, [sms("Still there?", 1, "days")])
    enroll(client, tenant, row.lead_id, sequence["id"])
    with thread_worker(app):
        dm(client, account_id=ACCOUNT, igsid=FAMILY, text="Yes! Can we book?")
        wait_for(lambda: enrollments(client, tenant, row.lead_id)[0]["status"] == "unenrolled", timeout=60)
    assert enrollments(client, tenant, row.lead_id)[0]["end_reason"] == "replied"


def test_a_bad_signature_is_refused_and_stores_nothing(client, db, tenant, graph):
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family"}
    dm(client, account_id=ACCOUNT, igsid=FAMILY, secret="not-the-app-secret", expect=403)
    resp = client.post(WEBHOOK, data=b'{"entry": []}', content_type="application/json")
    assert resp.status_code == 403
    assert inbound_of(db, tenant.id) == []
    assert _items(client.get("/api/leads", headers=tenant.headers()).get_json()) == []


def test_echoes_reads_and_unknown_accounts_are_answered_and_pass_over(client, db, tenant, graph):
    import json

    from app.devtools.instagram import signature
    from tests.instagram.kit import APP_SECRET

    connect(client, tenant, graph, ACCOUNT)
    events = [
        {
            "sender": {"id": ACCOUNT},
            "recipient": {"id": FAMILY},
            "timestamp": 1,
            "message": {"mid": "e1", "is_echo": True, "text": "ours"},
        },
        {"sender": {"id": FAMILY}, "recipient": {"id": ACCOUNT}, "timestamp": 2, "read": {"mid": "e1"}},
        {
            "sender": {"id": FAMILY},
            "recipient": {"id": "999"},
            "timestamp": 3,
            "message": {"mid": "x1", "text": "hi"},
        },
    ]
    body = json.dumps(
        {"object": "instagram", "entry": [{"id": ACCOUNT, "time": 3, "messaging": events}]}
    ).encode()
    resp = client.post(
        WEBHOOK,
        data=body,
        headers={"X-Hub-Signature-256": signature(APP_SECRET, body)},
        content_type="application/json",
    )
    assert resp.status_code == 200 and resp.get_json() == {"received": True}
    assert inbound_of(db, tenant.id) == []


def _items(answer):
    return answer["items"] if isinstance(answer, dict) else answer


def test_erasure_forgets_the_instagram_user(client, db, tenant, graph):
    connect(client, tenant, graph, ACCOUNT)
    graph.profiles[FAMILY] = {"username": "lopez.family", "name": "Maria Lopez"}
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="My daughter is 12, is that too early?")
    [row] = inbound_of(db, tenant.id)
    erased = client.post(f"/api/leads/{row.lead_id}/erase", headers=tenant.headers())
    assert erased.status_code == 200, erased.get_json()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM instagram_contacts").scalar_one() == 0
        texts = (
            conn.exec_driver_sql("SELECT notes FROM lead_activities WHERE notes IS NOT NULL").scalars().all()
        )
    assert not any("too early" in t or "lopez" in t.lower() for t in texts)
    # Writing again, they are someone new to the clinic: a new lead, not the erased one.
    dm(client, account_id=ACCOUNT, igsid=FAMILY, text="Hello again")
    assert inbound_of(db, tenant.id)[-1].lead_id != row.lead_id


def test_a_signed_body_of_another_shape_is_answered_not_a_500(client, db, tenant, graph):
    from app.devtools.instagram import signature
    from tests.instagram.kit import APP_SECRET

    connect(client, tenant, graph, ACCOUNT)
    odd = [
        b"[]",
        b'"text"',
        b'{"entry": 5}',
        b'{"entry": [{"messaging": {"a": 1}}]}',
        b'{"entry": [{"messaging": [{"sender": "x", "message": {"mid": 1}}]}]}',
        b"not json",
    ]
    for body in odd:
        resp = client.post(
            WEBHOOK,
            data=body,
            headers={"X-Hub-Signature-256": signature(APP_SECRET, body)},
            content_type="application/json",
        )
        assert resp.status_code == (400 if body == b"not json" else 200), (body, resp.status_code)
    assert inbound_of(db, tenant.id) == []
