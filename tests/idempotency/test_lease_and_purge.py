"""A crashed request's reservation is taken over after the lease; expired keys are purged in batches."""

import json
from datetime import timedelta

import sqlalchemy as sa

from app.domains.leads.models import Lead
from app.platform import clock
from app.platform.idempotency import service
from app.platform.idempotency.models import IdempotencyKey

BODY = {"first_name": "A", "last_name": "B"}
DIGEST = service.request_hash(method="POST", path="/api/leads", body=json.dumps(BODY).encode())


def reservation(db, tenant, key, age, *, done=False):
    with db.unit_of_work() as session:
        session.add(
            IdempotencyKey(
                clinic_id=tenant.id, actor=f"user:{tenant.users['front_desk'].id}", key=key, method="POST",
                path="/api/leads", request_hash=DIGEST, created_at=clock.now() - age,
                response_status=201 if done else None, response_body="{}" if done else None,
            )
        )  # fmt: skip


def count(db, model):
    with db.unit_of_work() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model))


def test_a_stale_in_progress_reservation_is_taken_over_and_a_fresh_one_is_409(client, db, tenant):
    headers = {**tenant.headers("front_desk"), "Idempotency-Key": "crashed"}
    body = BODY
    reservation(db, tenant, "crashed", timedelta(seconds=5))  # its request may still be running
    assert client.post("/api/leads", json=body, headers=headers).status_code == 409
    with db.unit_of_work() as session:
        session.execute(sa.update(IdempotencyKey).values(created_at=clock.now() - timedelta(seconds=61)))
    first = client.post("/api/leads", json=body, headers=headers)  # past the 60 s lease: its process died
    assert first.status_code == 201
    again = client.post("/api/leads", json=body, headers=headers)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert count(db, Lead) == 1


def test_the_sweep_purges_expired_keys_in_batches_and_keeps_live_ones(app, db, tenant, monkeypatch):
    for i in range(5):
        reservation(db, tenant, f"old-{i}", timedelta(hours=25), done=True)
    reservation(db, tenant, "live", timedelta(hours=23), done=True)
    monkeypatch.setattr(app.config["SETTINGS"], "idempotency_purge_batch", 2)
    with app.app_context():
        assert service.purge_expired_keys(db=db, now=clock.now()) == 5
    with db.unit_of_work() as session:
        assert session.scalars(sa.select(IdempotencyKey.key)).all() == ["live"]


def test_the_purge_sweep_is_on_the_beat_schedule(app):
    from app.platform import celery_config

    entry = celery_config.beat_entries(app.config["SETTINGS"])["idempotency-purge-expired"]
    assert entry["task"] == "idempotency.purge_expired"
