"""The in-app inbox: unread first, newest first; read marks; nobody else's notifications."""

from datetime import timedelta

from app.domains.outbound import inbox
from app.platform import clock


def add(app, tenant, role, n, at, kind="reminder"):
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
        return inbox.notify_in_app(
            session=session,
            clinic_id=tenant.id,
            user_id=tenant.users[role].id,
            notice=inbox.StaffNotice(
                kind=kind, title=f"note {n}", body="b", link=f"/api/leads/{n}", dedupe_key=f"test:{role}:{n}"
            ),
            now=at,
        ).id


def test_unread_first_then_newest_and_marking_read(app, client, tenant):
    t0 = clock.now()
    ids = [add(app, tenant, "treatment_coordinator", n, t0 + timedelta(minutes=n)) for n in range(3)]
    headers = tenant.headers("treatment_coordinator")
    assert [n["id"] for n in client.get("/api/me/notifications", headers=headers).json] == ids[::-1]
    read = client.post(f"/api/me/notifications/{ids[2]}/read", headers=headers)
    assert read.status_code == 200 and read.json["read_at"]
    listed = client.get("/api/me/notifications", headers=headers).json
    assert [n["id"] for n in listed] == [ids[1], ids[0], ids[2]]
    unread = client.get("/api/me/notifications?unread=true", headers=headers).json
    assert [n["id"] for n in unread] == [ids[1], ids[0]]


def test_same_dedupe_key_gives_one_notification(app, client, tenant):
    first = add(app, tenant, "doctor", 1, clock.now())
    second = add(app, tenant, "doctor", 1, clock.now())
    assert first == second
    assert len(client.get("/api/me/notifications", headers=tenant.headers("doctor")).json) == 1


def test_someone_elses_notification_is_404(app, client, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    mine = add(app, a, "doctor", 1, clock.now())
    assert client.post(f"/api/me/notifications/{mine}/read", headers=b.headers("doctor")).status_code == 404
    assert (
        client.post(f"/api/me/notifications/{mine}/read", headers=a.headers("front_desk")).status_code == 404
    )
    assert client.get("/api/me/notifications", headers=b.headers("doctor")).json == []
