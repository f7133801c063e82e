"""POST /api/webhooks/:id/deliveries/:delivery_id/redeliver: a failed delivery sent again, once, with
its Idempotency-Key; in-flight ones are a 409, another clinic's a 404; audited."""

import sqlalchemy as sa

from app.platform.audit.models import AuditEvent
from tests.leadkit import create_lead
from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, run_attempts, subscribe


def test_a_failed_delivery_is_redelivered_once_with_its_idempotency_key(
    app, client, db, tenant, make_tenant, monkeypatch
):
    monkeypatch.setattr(app.config["SETTINGS"], "webhook_max_attempts", 2)
    receiver = Receiver(failures=1000)
    try:
        sub = subscribe(client, tenant, receiver.url, ["lead.created"])
        create_lead(client, tenant)
        process_events(app, db)
        [job] = deliveries(db)
        run_attempts(app, db, job)
        [failed] = client.get(f"/api/webhooks/{sub['id']}/deliveries", headers=tenant.headers()).get_json()
        assert failed["status"] == "failed" and failed["attempts"] == 2 and receiver.hits == 2
        url = f"/api/webhooks/{sub['id']}/deliveries/{failed['id']}/redeliver"

        other = make_tenant("Other")
        assert client.post(url, headers=other.headers()).status_code == 404
        assert client.post(f"/api/webhooks/{sub['id'] + 999}/deliveries/{failed['id']}/redeliver",
                           headers=tenant.headers()).status_code == 404  # fmt: skip
        assert client.post(url, headers=tenant.headers("treatment_coordinator")).status_code == 403

        receiver.failures = receiver.hits  # the receiver is fixed
        resp = client.post(url, headers=tenant.headers())
        assert resp.status_code == 200, resp.get_json()
        assert (resp.get_json()["status"], resp.get_json()["attempts"], resp.get_json()["last_error"]) == (
            "pending", 0, None,
        )  # fmt: skip
        assert client.post(url, headers=tenant.headers()).status_code == 409  # already on its way
        jobs = [j for j in deliveries(db) if j.status in ("pending", "dispatched")]
        assert len(jobs) == 1
        run_attempts(app, db, jobs[0])
        assert len(receiver.accepted) == 1
        headers, _ = receiver.accepted[0]
        assert headers["Idempotency-Key"] == f"delivery-{failed['id']}"
        [done] = client.get(f"/api/webhooks/{sub['id']}/deliveries", headers=tenant.headers()).get_json()
        assert done["status"] == "delivered" and done["attempts"] == 1
    finally:
        receiver.close()
    with db.unit_of_work() as session:
        [audit] = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "webhook_delivery.redeliver")
        ).all()
        assert audit.before["status"] == "failed" and audit.actor.startswith("user:")
