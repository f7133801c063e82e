"""Lead capture on PostgreSQL writes a new lead's rows with one statement (the speed of issue 3),
whatever the code that builds them looks like: the statements the driver runs are counted."""

from __future__ import annotations

import re
from contextlib import contextmanager

import psycopg
import pytest

from tests.leadkit import add_user, create_lead

# Every table a new lead writes a row to: one statement for them all.
LEAD_ROWS = ("leads", "lead_stage_history", "lead_activities", "events", "scheduled_jobs", "audit_events")
# The statements of a capture on PostgreSQL: two reads of the token's user, the capture's context
# (clinic, source, default stage, new ids, and a round-robin clinic's turn), the duplicate probe,
# the rows.
MAX_STATEMENTS = 5


@contextmanager
def driver_statements():
    """The SQL of every statement psycopg runs in the block (SQLAlchemy's or a raw cursor's)."""
    seen: list[str] = []
    originals = {cls: cls.execute for cls in (psycopg.Cursor, psycopg.RawCursor)}

    def counting(original):
        def execute(self, query, *args, **kwargs):
            seen.append(query if isinstance(query, str) else str(query))
            return original(self, query, *args, **kwargs)

        return execute

    for cls, original in originals.items():
        cls.execute = counting(original)
    try:
        yield seen
    finally:
        for cls, original in originals.items():
            cls.execute = original


def test_a_capture_writes_its_rows_with_one_statement(app, client, tenant, db):
    if db.dialect != "postgresql":
        pytest.skip("the one-statement capture is PostgreSQL's (SQLite writes in one transaction)")
    create_lead(client, tenant, phone="(415) 555-0100")  # warm: tokens, compiled statements
    with driver_statements() as seen:
        create_lead(client, tenant, first_name="Ada", phone="(415) 555-0101")
    writing = {
        table: [sql for sql in seen if re.search(rf"INSERT INTO {table}\b", sql)] for table in LEAD_ROWS
    }
    batches = {sql for found in writing.values() for sql in found}
    assert len(batches) == 1, seen
    assert all(writing.values()), writing  # each of the lead's rows is in that one statement
    assert not any(s.strip().upper().startswith(("BEGIN", "COMMIT")) for s in seen), seen
    assert len(seen) <= MAX_STATEMENTS, seen


def test_a_round_robin_capture_takes_its_turn_in_its_first_read(app, client, tenant, db):
    """The owner's turn is no round trip of its own: the read of the clinic's context takes it,
    and the lead goes to the coordinator that turn chose (the rotation still moves one a lead)."""
    if db.dialect != "postgresql":
        pytest.skip("the turn in the context read is PostgreSQL's (SQLite picks in its transaction)")
    coordinators = {tenant.users["treatment_coordinator"].id, add_user(app, tenant), add_user(app, tenant)}
    create_lead(client, tenant, phone="(415) 555-0110")  # warm: tokens, compiled statements
    owners = []
    for n in range(3):
        with driver_statements() as seen:
            owners.append(create_lead(client, tenant, first_name=f"Turn{n}", phone=f"(415) 555-012{n}"))
        turns = [sql for sql in seen if "INSERT INTO assignment_cursors" in sql]
        assert len(turns) == 1, seen
        assert "FROM clinics" in turns[0] and "nextval" in turns[0], turns[0]
    assert {lead["assigned_to_id"] for lead in owners} == coordinators  # three leads, each its turn
