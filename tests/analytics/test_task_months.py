"""The task months (migration 0070, app/domains/analytics/task_months.py): whoever writes a task, the
monthly counts equal the tasks counted by month; a fold keeps them; the follow-up report over whole
months reads them and says what the tasks say."""

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.domains.analytics import month_changes, task_counts
from app.domains.analytics.models import TaskMonth
from app.domains.privacy import erasure
from app.domains.tasks.alerts import overdue
from app.domains.tasks.models import LeadTask
from app.platform import clock
from tests.requirements import need_postgres
from tests.tasks.taskkit import iso, lead_for
from tests.tasks.test_tasks_api import new_task


def _kept_equals_the_tasks(db) -> dict:
    with db.engine.connect() as conn:
        kept, counted = month_changes.kept(conn, TaskMonth.__table__), task_counts.recomputed(conn)
    assert kept == counted
    return kept


def _rows(db) -> int:
    with db.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(TaskMonth))


def _post(client, tenant, path, **body):
    resp = client.post(f"/api/leads/tasks/{path}", json=body, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_every_writer_of_a_task_moves_its_month_counts(app, client, db, make_tenant):
    """Tasks of two clinics due in four months, written by the API's use cases (create, complete with
    each outcome, a reschedule that makes the next task, cancel, a snooze and an edit into another
    month), the overdue sweep, erasure, a bulk UPDATE and a DELETE: after each, the months equal the
    tasks counted by month; a fold leaves one row a month with the same counts."""
    now = clock.now()
    clinics = [make_tenant("Task months A"), make_tenant("Task months B")]
    tasks = {}
    for tenant in clinics:
        lead = lead_for(client, tenant)
        for days in (-45, -5, 1, 40):
            tasks[(tenant.id, days)] = new_task(
                client, tenant, lead["id"], due_at=iso(now + timedelta(days=days))
            )
    kept = _kept_equals_the_tasks(db)
    assert {clinic for clinic, _ in kept} == {tenant.id for tenant in clinics}

    a, b = clinics
    _post(client, a, f"{tasks[(a.id, -45)]['id']}/complete", outcome="no_answer")
    _post(client, a, f"{tasks[(a.id, -5)]['id']}/complete", outcome="done")
    later = iso(now + timedelta(days=3))
    _post(client, a, f"{tasks[(a.id, 1)]['id']}/complete", outcome="rescheduled", reschedule_to=later)
    _post(client, b, f"{tasks[(b.id, 1)]['id']}/cancel")
    _post(client, b, f"{tasks[(b.id, 40)]['id']}/snooze", minutes=60 * 24 * 35)
    moved = client.put(
        f"/api/leads/tasks/{tasks[(a.id, 40)]['id']}",
        json={"due_at": iso(now - timedelta(days=70))},
        headers=a.headers(),
    )
    assert moved.status_code == 200, moved.get_json()
    _kept_equals_the_tasks(db)

    with app.app_context(), db.unit_of_work() as session:
        assert overdue.mark_overdue(session=session, now=now) > 0
    _kept_equals_the_tasks(db)
    with app.app_context(), db.unit_of_work() as session:
        erasure.erase(
            session=session, clinic_id=b.id, lead_id=tasks[(b.id, -5)]["lead_id"], actor_ref="t", now=now
        )
    _kept_equals_the_tasks(db)
    with db.engine.begin() as conn:  # writers outside the use cases: edits in one transaction, a delete
        due = conn.execute(sa.select(LeadTask.id, LeadTask.due_at).where(LeadTask.clinic_id == a.id)).all()
        for task_id, due_at in due:
            conn.execute(
                sa.update(LeadTask).where(LeadTask.id == task_id).values(due_at=due_at - timedelta(days=31))
            )
        conn.execute(sa.delete(LeadTask).where(LeadTask.id == tasks[(a.id, -5)]["id"]))
    kept = _kept_equals_the_tasks(db)

    before = _rows(db)
    with db.unit_of_work() as session:
        assert month_changes.fold(session) > 0
    assert _kept_equals_the_tasks(db) == kept
    assert _rows(db) == len(kept) < before
    with db.unit_of_work() as session:
        assert month_changes.fold(session) == 0  # nothing left to fold


def test_a_write_that_changes_nothing_counted_adds_no_row(app, client, db, tenant):
    """Reassigning, retitling or claiming a task leaves its counts; no row of changes is added
    (PostgreSQL's statement trigger nets each month; SQLite's fires on the counted columns only)."""
    lead = lead_for(client, tenant)
    task = new_task(client, tenant, lead["id"])
    before = _rows(db)
    edited = client.put(
        f"/api/leads/tasks/{task['id']}", json={"title": "Call again"}, headers=tenant.headers()
    )
    assert edited.status_code == 200, edited.get_json()
    assert _rows(db) == before
    _kept_equals_the_tasks(db)


def _first_of_month(moment: datetime, months_back: int) -> datetime:
    year, month = moment.year, moment.month - months_back
    while month < 1:
        year, month = year - 1, month + 12
    return datetime(year, month, 1, tzinfo=UTC)


def test_the_follow_up_report_over_whole_months_reads_the_months(app, client, db, tenant):
    """A range of two whole months and a part of a third: the report reads the whole months from the
    task months, the part from the tasks, and counts what the tasks say, before and after a fold."""
    now = clock.now()
    start = _first_of_month(now, 2) - timedelta(days=3)  # three days of a partial month, then two whole
    lead = lead_for(client, tenant)
    made = {
        days: new_task(client, tenant, lead["id"], due_at=iso(start + timedelta(days=days)))
        for days in (-2, 1, 20, 45, 58)
    }
    _post(client, tenant, f"{made[20]['id']}/complete", outcome="done")
    window = {"from": start.isoformat(), "to": _first_of_month(now, 0).isoformat()}
    statements = []

    def keep(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        reports = [
            client.get("/api/leads/analytics/follow-up", query_string=window, headers=tenant.headers())
        ]
        with db.unit_of_work() as session:
            month_changes.fold(session)
        reports.append(
            client.get("/api/leads/analytics/follow-up", query_string=window, headers=tenant.headers())
        )
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    with db.engine.connect() as conn:
        due_in_range = conn.execute(
            sa.select(*task_counts.counts()).where(
                LeadTask.clinic_id == tenant.id,
                LeadTask.due_at >= start,
                LeadTask.due_at < _first_of_month(now, 0),
            )
        ).one()
    expected = dict(zip(task_counts.COUNTS, due_in_range, strict=True))
    assert expected["due"] >= 4  # the range's own tasks (the lead's call task too, if due in it)
    for report in reports:
        assert report.status_code == 200, report.get_json()
        found = report.get_json()
        assert (found["tasks_due"], found["tasks_completed"], found["tasks_open"]) == (
            expected["due"],
            expected["completed"],
            expected["still_open"],
        )
        assert found["outcome_done"] == expected["done"]
    assert any("analytics_task_months" in statement for statement in statements)


def test_writers_of_one_month_do_not_wait_for_each_other(app, client, db, tenant):
    """A transaction that wrote a task holds no lock another writer of the same month needs: its
    rows of changes are inserted, not a shared month row updated."""
    need_postgres(str(db.engine.url), "row locks between concurrent transactions")
    lead = lead_for(client, tenant)
    one, two = (
        new_task(client, tenant, lead["id"], due_at=iso(clock.now() + timedelta(minutes=m))) for m in (5, 6)
    )
    with db.engine.connect() as holder, db.engine.connect() as other:
        holder.execute(sa.update(LeadTask).where(LeadTask.id == one["id"]).values(status="CANCELLED"))
        other.execute(sa.text("SET lock_timeout = '2s'"))  # waiting on `holder` would fail here
        cancelled = other.execute(
            sa.update(LeadTask).where(LeadTask.id == two["id"]).values(status="CANCELLED")
        )
        assert cancelled.rowcount == 1
        other.commit()
        holder.commit()
    _kept_equals_the_tasks(db)


def test_two_folds_at_once_fold_each_row_once(app, client, db, tenant):
    """The second fold waits for the first's DELETE and then finds its rows gone: nothing counted twice."""
    need_postgres(str(db.engine.url), "two transactions folding at once")
    lead = lead_for(client, tenant)
    for hours in (1, 2, 3):
        new_task(client, tenant, lead["id"], due_at=iso(clock.now() + timedelta(hours=hours)))
    kept = _kept_equals_the_tasks(db)
    first = db.unit_of_work()
    session = first.__enter__()
    assert month_changes.fold(session) > 0
    folded_by_second = []

    def second():
        with db.unit_of_work() as other:
            folded_by_second.append(month_changes.fold(other))

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(timeout=1)
    assert thread.is_alive()  # waiting on the first fold's rows
    first.__exit__(None, None, None)
    thread.join(timeout=10)
    assert folded_by_second == [0]
    assert _kept_equals_the_tasks(db) == kept
