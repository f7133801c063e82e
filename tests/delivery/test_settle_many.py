"""The batch form of the delivery primitive: one statement claims a window of rows, one writes their
outcomes, each by the same compare-and-set as a single row (on PostgreSQL and on SQLite)."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.delivery import queries, service
from tests.outbound.kit import queue_emails, rows

TABLE = Notification.__table__
CLAIM = service.claim_many_statement(TABLE, [TABLE.c.id, TABLE.c.attempts])
COLUMNS = ("status", "attempts", "sent_at", "last_error")


def test_one_statement_claims_the_pending_rows_and_one_settles_those_still_at_their_attempt(app, db, tenant):
    ids = queue_emails(app, tenant, 4)
    with db.unit_of_work() as session:  # the first row was sent already (another job)
        session.execute(sa.update(Notification).where(Notification.id == ids[0]).values(status="sent"))
    now = clock.now()
    with db.unit_of_work() as session:
        claimed = service.claim_many(session, CLAIM, ids, now)
    assert [(r.id, r.attempts) for r in claimed] == [(i, 1) for i in ids[1:]]
    with db.unit_of_work() as session:  # meanwhile a later attempt took the last row over
        session.execute(sa.update(Notification).where(Notification.id == ids[3]).values(attempts=2))
    outcomes = [
        {"id": i, "attempt": 1, "status": status, "attempts": 1, "sent_at": sent_at, "last_error": error}
        for i, status, sent_at, error in [
            (ids[0], "failed", None, "stale: never claimed by this batch"),
            (ids[1], "sent", now, None),
            (ids[2], "pending", None, "SMTP 451 while sending the message: try again later"),
            (ids[3], "sent", now, None),
        ]
    ]
    with db.unit_of_work() as session:
        written = queries.settle_many(session, TABLE, outcomes, COLUMNS)
    assert sorted(written) == ids[1:3]
    found = rows(db, ids)
    expected = [("sent", 0), ("sent", 1), ("pending", 1), ("sending", 2)]
    assert [(r.status, r.attempts) for r in found] == expected
    assert found[1].sent_at == now and found[1].last_error is None
    assert found[2].last_error.startswith("SMTP 451") and found[2].sent_at is None
    with db.unit_of_work() as session:  # a second claim finds nothing left pending but the retried row
        assert [r.id for r in service.claim_many(session, CLAIM, ids, clock.now())] == [ids[2]]
