"""A timers batch of SLA breaches (one unit of work, as a worker runs them) tells every active clinic
admin of each breach once, and no inactive admin, while it reads the clinic's admins once for the
whole batch, not once a breach."""

from __future__ import annotations

from datetime import timedelta

from app.platform import clock
from app.platform.app_db import get_db
from app.platform.scheduling import runner
from tests.leadkit import add_user
from tests.outbound.test_batch_delivery import Statements
from tests.outbound.test_deliver_together import LEADS, _breaches_due
from tests.tasks.taskkit import notifications_of


def _reads_of_admins(sql: list[str]) -> int:
    return sum(s.startswith("select") and "from users" in s and "users.role" in s for s in sql)


def test_a_batch_of_breaches_tells_each_active_admin_once_and_reads_the_admins_once(app, db, client, tenant):
    second = add_user(app, tenant, "clinic_admin")
    former = add_user(app, tenant, "clinic_admin", active=False)
    breaches = _breaches_due(app, client, tenant)
    assert len(breaches) == LEADS

    with app.app_context(), Statements(db.engine) as seen:
        outcomes = runner.run_batch(db=get_db(), job_ids=breaches, now=clock.now())
    assert set(outcomes.values()) == {"done"}

    for admin_id in (tenant.users["clinic_admin"].id, second):
        told = notifications_of(app, admin_id, "escalation")
        assert len(told) == LEADS and all("Speed to lead missed" in n.title for n in told)
        assert len({n.link for n in told}) == LEADS  # one for each lead
    assert notifications_of(app, former, "escalation") == []
    assert _reads_of_admins(seen.sql) == 1

    # Redelivered later: nobody is told twice.
    with app.app_context():
        runner.run_batch(db=get_db(), job_ids=breaches, now=clock.now() + timedelta(seconds=5))
    assert len(notifications_of(app, second, "escalation")) == LEADS
