"""The clinic-wide activity feed and one activity by id, over the API: filters, paging, audit, tenancy."""

from tests.tasks.taskkit import lead_for


def log(client, tenant, lead_id, role="treatment_coordinator", **activity):
    resp = client.post(f"/api/leads/{lead_id}/activities", json=activity, headers=tenant.headers(role))
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def feed(client, tenant, query="", role="front_desk", expect=200):
    resp = client.get(f"/api/activities{query}", headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp


def ids(resp):
    return [a["id"] for a in resp.get_json()]


def audit_actions(client, tenant, action):
    resp = client.get(f"/api/audit-events?action={action}", headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200
    return resp.get_json()


def test_the_feed_filters_and_pages_newest_first(client, tenant):
    first, second = lead_for(client, tenant), lead_for(client, tenant)
    call = log(client, tenant, first["id"], type="PHONE_CALL", direction="OUTBOUND", outcome="no_answer")
    note = log(client, tenant, second["id"], type="NOTE", notes="asked about Invisalign")
    sms = log(client, tenant, second["id"], role="clinic_admin", type="SMS", direction="INBOUND")

    newest = ids(feed(client, tenant, "?page_size=100"))
    assert newest.index(sms["id"]) < newest.index(note["id"]) < newest.index(call["id"])
    assert ids(feed(client, tenant, "?type=PHONE_CALL")) == [call["id"]]
    assert set(ids(feed(client, tenant, "?type=NOTE&type=SMS"))) == {note["id"], sms["id"]}
    assert ids(feed(client, tenant, "?direction=INBOUND")) == [sms["id"]]
    assert {note["id"], sms["id"]} <= set(ids(feed(client, tenant, f"?lead_id={second['id']}")))
    assert call["id"] not in ids(feed(client, tenant, f"?lead_id={second['id']}&page_size=100"))
    admin = tenant.users["clinic_admin"]
    assert ids(feed(client, tenant, f"?created_by={admin.id}&type=SMS")) == [sms["id"]]
    assert ids(feed(client, tenant, f"?actor=user:{admin.id}&type=SMS")) == [sms["id"]]
    future = "?occurred_from=2999-01-01T00:00:00Z"
    assert feed(client, tenant, future).get_json() == []
    page = feed(client, tenant, "?type=NOTE&type=SMS&page=2&page_size=1")
    assert ids(page) == [note["id"]] and '"total": 2' in page.headers["X-Pagination"]


def test_single_activity_and_every_read_is_audited(client, tenant):
    lead = lead_for(client, tenant)
    note = log(client, tenant, lead["id"], type="NOTE", notes="prefers evenings")
    one = client.get(f"/api/activities/{note['id']}", headers=tenant.headers("treatment_coordinator"))
    assert one.status_code == 200 and one.get_json()["notes"] == "prefers evenings"
    assert one.get_json()["lead_id"] == lead["id"]
    reads = audit_actions(client, tenant, "activity.read")
    assert [(r["subject_id"], r["after"]["activity_id"]) for r in reads] == [(str(lead["id"]), note["id"])]
    assert reads[0]["actor"] == f"user:{tenant.users['treatment_coordinator'].id}"
    assert reads[0]["after"]["phi"] is True

    feed(client, tenant, "?type=NOTE")
    feed_reads = audit_actions(client, tenant, "activities.feed.read")
    assert len(feed_reads) == 1 and feed_reads[0]["after"]["filters"] == {"type": ["NOTE"]}
    assert note["id"] in feed_reads[0]["after"]["activity_ids"]


def test_another_clinics_activities_are_404_and_absent_bad_filters_422(client, tenant, make_tenant):
    other = make_tenant("Elsewhere")
    theirs = log(client, other, lead_for(client, other)["id"], type="NOTE", notes="theirs")
    assert client.get(f"/api/activities/{theirs['id']}", headers=tenant.headers()).status_code == 404
    assert theirs["id"] not in ids(feed(client, tenant, "?page_size=100"))
    assert feed(client, tenant, f"?lead_id={theirs['lead_id']}").get_json() == []
    for query, field in (
        ("?type=GOSSIP", "type"),
        ("?direction=SIDEWAYS", "direction"),
        ("?lead_id=0", "lead_id"),
        ("?occurred_from=yesterday", "occurred_from"),
        ("?occurred_from=2026-02-01T00:00:00Z&occurred_to=2026-01-01T00:00:00Z", "occurred_to"),
    ):
        body = feed(client, tenant, query, expect=422).get_json()
        assert field in body["errors"]["query"], (query, body)
    assert client.get("/api/activities").status_code == 401
