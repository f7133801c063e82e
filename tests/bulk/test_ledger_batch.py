"""`uow.schedule` by the many (bulk follow-ups' task timers): each key once, and only what is due
soon dispatched."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.platform import clock
from app.platform.scheduling.models import DISPATCHED, PENDING, ScheduledJob
from tests.ledger import queued_job_ids, schedule_many


def jobs(tenant, now, keys, due_in):
    return [
        {
            "kind": "test.effect",
            "due_at": now + due_in,
            "dedupe_key": key,
            "clinic_id": tenant.id,
            "subject_type": "task",
            "subject_id": index,
            "payload": {"n": index},
        }
        for index, key in enumerate(keys)
    ]


def test_schedule_ids_inserts_each_key_once_and_dispatches_only_what_is_due_soon(app, db, tenant, redis):
    now = clock.now()
    with app.app_context():
        with db.unit_of_work() as session:
            soon = schedule_many(session=session, jobs=jobs(tenant, now, ["a", "b"], timedelta()), now=now)
            later = schedule_many(session=session, jobs=jobs(tenant, now, ["c"], timedelta(days=2)), now=now)
        with db.unit_of_work() as session:
            again = schedule_many(
                session=session, jobs=jobs(tenant, now, ["a", "b", "d"], timedelta()), now=now
            )
        with db.unit_of_work() as session:
            rows = {j.dedupe_key: j for j in session.scalars(sa.select(ScheduledJob))}
    assert len(soon) == 2 and len(later) == 1 and len(again) == 1
    assert sorted(rows) == ["a", "b", "c", "d"]
    assert rows["a"].payload == {"n": 0} and rows["a"].subject == "task:0" and rows["a"].queue == "realtime"
    assert rows["c"].status == PENDING  # beyond the horizon: the promote sweep publishes it later
    assert {rows[k].status for k in "abd"} == {DISPATCHED}
    assert queued_job_ids(redis) == sorted(rows[k].id for k in "abd")


def test_schedule_ids_refuses_an_unknown_kind(app, db, tenant):
    with app.app_context(), pytest.raises(ValueError), db.unit_of_work() as session:
        schedule_many(
            session=session,
            jobs=[{"kind": "no.such", "due_at": clock.now(), "dedupe_key": "x"}],
            now=clock.now(),
        )
