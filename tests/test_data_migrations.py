"""Data migrations: rows stored under the old meaning are rewritten to the new one when upgraded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from app.platform import migrate
from app.platform.db import make_engine

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def empty_database(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = make_url(database_url)
    name = f"followup_dmig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _filler(column: sa.Column):
    kind = column.type
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 0
    if isinstance(kind, sa.DateTime):
        return NOW
    if isinstance(kind, sa.JSON):
        return {}
    return "x"


def insert(conn, table_name: str, **values) -> int:
    """A row of `table_name` as it is at the current revision: `values`, and a plain value for every
    other required column (so the test does not restate each table's shape at that revision)."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=conn)
    row = dict(values)
    for column in table.columns:
        required = not column.nullable and column.server_default is None and not column.primary_key
        if required and column.name not in row:
            row[column.name] = _filler(column)
    return conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()


def rows(conn, sql: str, **params) -> list:
    return conn.execute(sa.text(sql), params).all()


OLD_BREAK_UP = [
    {"field": "event.outcome", "operator": "in", "value": ["no_answer", "voicemail", "wrong_number"]},
    {"field": "failed_attempts_in_a_row", "operator": "equals", "value": 3},
]
BREAK_UP_EMAIL = {"type": "send_email", "once_per_lead": True, "subject": "Close?", "body": "Hi"}


def test_stored_rules_and_task_types_take_the_one_vocabulary(empty_database):
    migrate.upgrade(empty_database, "0017_i18b_lead_import")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic = insert(conn, "clinics", name="Old clinic", timezone="UTC")
            common = {"clinic_id": clinic, "trigger": "activity.logged", "version": 1, "active": True}
            seeded = insert(
                conn,
                "automation_rules",
                **common,
                name="Three failed attempts",
                default_key="three_failed_attempts",
                conditions=OLD_BREAK_UP,
                actions=[BREAK_UP_EMAIL, {"type": "suggest", "suggestion": "mark_lost"}],
            )
            edited_conditions = [{"field": "failed_attempts_in_a_row", "operator": "equals", "value": 5}]
            edited = insert(
                conn,
                "automation_rules",
                **{**common, "clinic_id": insert(conn, "clinics", name="Other", timezone="UTC")},
                name="Five, as we like it",
                default_key="three_failed_attempts",
                conditions=edited_conditions,
                actions=[BREAK_UP_EMAIL],
            )
            meeting = insert(
                conn,
                "automation_rules",
                **common,
                name="Book a meeting",
                conditions=[],
                actions=[{"type": "create_task", "title": "Meet", "task_type": "MEETING"}],
            )
            untouched = insert(
                conn,
                "automation_rules",
                **common,
                name="A call",
                conditions=[],
                actions=[{"type": "create_task", "title": "Call", "task_type": "CALL"}],
            )
            template = insert(conn, "task_templates", clinic_id=clinic, name="t", title="t", type="OTHER")

        migrate.upgrade(empty_database, "0018_i14a_rule_vocabulary")

        with engine.connect() as conn:
            table = sa.Table("automation_rules", sa.MetaData(), autoload_with=conn)
            stored = {r.id: r for r in conn.execute(sa.select(table)).all()}
            versions = rows(conn, "SELECT rule_id, version FROM automation_rule_versions ORDER BY rule_id")
            [template_type] = rows(conn, "SELECT type FROM task_templates WHERE id = :id", id=template)[0]
        assert stored[seeded].conditions[0] == {"field": "event.attempt", "operator": "equals", "value": True}
        assert stored[seeded].actions[0]["break_up"] is True and stored[seeded].version == 2
        assert "break_up" not in stored[seeded].actions[1]
        # An edited rule keeps its conditions; its break-up email is still marked as one.
        assert stored[edited].conditions == edited_conditions and stored[edited].actions[0]["break_up"]
        assert stored[meeting].actions[0]["task_type"] == "CUSTOM" and stored[meeting].version == 2
        assert stored[untouched].version == 1
        assert sorted(versions) == sorted([(seeded, 2), (edited, 2), (meeting, 2)])
        assert template_type == "CUSTOM"
    finally:
        engine.dispose()


def test_lead_notes_are_encrypted_in_place_and_last_contact_is_backfilled(empty_database, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PHI_ENCRYPTION_KEY", key)  # the key the app uses, as the migration reads it
    migrate.upgrade(empty_database, "0024_i14b_staleness")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic = insert(conn, "clinics", name="Old clinic", timezone="UTC")
            source = insert(conn, "lead_sources", clinic_id=clinic, name="Web", category="WEBSITE")
            common = {"clinic_id": clinic, "source_id": source, "status": "NEW", "pipeline_stage": "new_lead"}
            noted = insert(conn, "leads", **common, first_name="Jane", notes="Allergic to latex")
            quiet = insert(conn, "leads", **common, first_name="John", notes=None)

            def activity(lead_id, hours, type, direction=None, outcome=None):
                at = NOW + timedelta(hours=hours)
                insert(
                    conn, "lead_activities", clinic_id=clinic, lead_id=lead_id, type=type,
                    direction=direction, outcome=outcome, occurred_at=at, created_at=at, actor="user:1",
                )  # fmt: skip

            activity(noted, 1, "SMS", "INBOUND")  # contact
            activity(noted, 2, "PHONE_CALL", "OUTBOUND", "spoke")  # contact: the last one
            activity(noted, 3, "PHONE_CALL", "OUTBOUND", "voicemail")  # an attempt
            activity(noted, 4, "EMAIL", "OUTBOUND")  # an attempt
            activity(quiet, 1, "NOTE")

        migrate.upgrade(empty_database, "0025_i14a_lead_contact_facts")

        with engine.connect() as conn:
            found = {
                r.id: r
                for r in conn.execute(
                    sa.text("SELECT id, notes_encrypted, last_contacted_at, escalated_at FROM leads")
                )
            }
            assert "notes" not in {c["name"] for c in sa.inspect(conn).get_columns("leads")}
        token = found[noted].notes_encrypted
        assert "latex" not in token
        assert Fernet(key.encode()).decrypt(token.encode()).decode() == "Allergic to latex"
        assert found[quiet].notes_encrypted is None
        last = found[noted].last_contacted_at
        last = datetime.fromisoformat(last) if isinstance(last, str) else last
        assert last.replace(tzinfo=UTC) == NOW + timedelta(hours=2)
        assert found[quiet].last_contacted_at is None and found[noted].escalated_at is None

        migrate.downgrade(empty_database, "0024_i14b_staleness")
        with engine.connect() as conn:
            notes = dict(conn.execute(sa.text("SELECT id, notes FROM leads")).all())
        assert notes == {noted: "Allergic to latex", quiet: None}
    finally:
        engine.dispose()


def test_the_age_group_at_capture_is_backfilled_from_the_encrypted_date_of_birth(empty_database, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("PHI_ENCRYPTION_KEY", key)  # the key the app uses, as the migration reads it
    migrate.upgrade(empty_database, "0028_i17b_treatment_value")
    engine = make_engine(empty_database)

    def token(day: str) -> str:
        return Fernet(key.encode()).encrypt(day.encode()).decode()

    try:
        with engine.begin() as conn:
            clinic = insert(conn, "clinics", name="Old clinic", timezone="UTC")
            source = insert(conn, "lead_sources", clinic_id=clinic, name="Web", category="WEB_ORGANIC")
            common = {"clinic_id": clinic, "source_id": source, "status": "NEW", "pipeline_stage": "new_lead"}
            # Captured on NOW (2026-11-01): the group is the age then, not today's.
            born = {"child": "2013-11-02", "teen": "2013-10-29", "adult": "2008-10-29", None: None}
            ids = {
                group: insert(
                    conn, "leads", **common, first_name=str(group), patient_dob_encrypted=dob and token(dob)
                )
                for group, dob in born.items()
            }

        migrate.upgrade(empty_database, "0029_i19_lead_age_group")

        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT id, patient_age_group FROM leads")).all())
        assert {group: stored[lead_id] for group, lead_id in ids.items()} == {g: g for g in born}

        migrate.downgrade(empty_database, "0028_i17b_treatment_value")
        with engine.connect() as conn:
            assert "patient_age_group" not in {c["name"] for c in sa.inspect(conn).get_columns("leads")}
    finally:
        engine.dispose()


def test_the_ledger_keeps_its_rows_and_each_dedupe_key_once_through_partitioning_and_back(empty_database):
    migrate.upgrade(empty_database, "0030_i15analytics_counted_leads")
    engine = make_engine(empty_database)
    postgresql = engine.dialect.name == "postgresql"
    # Rows of this month, of two months ago and of three years ago (older than any partition made).
    made = [NOW, NOW - timedelta(days=62), NOW - timedelta(days=3 * 365)]
    job = {"kind": "test.effect", "queue": "realtime", "payload": {}, "status": "done", "attempts": 1}
    try:
        with engine.begin() as conn:
            ids = [
                insert(conn, "scheduled_jobs", **job, due_at=at, created_at=at, dedupe_key=f"k{i}")
                for i, at in enumerate(made)
            ]
        migrate.upgrade(empty_database, "0031_i20_partitioned_ledger")
        with engine.begin() as conn:
            stored = rows(conn, "SELECT id, dedupe_key FROM scheduled_jobs ORDER BY id")
            assert stored == [(job_id, f"k{i}") for i, job_id in enumerate(ids)]
            assert rows(conn, "SELECT dedupe_key, job_id FROM scheduled_job_keys ORDER BY job_id") == [
                (f"k{i}", job_id) for i, job_id in enumerate(ids)
            ]
            if postgresql:
                where = rows(conn, "SELECT tableoid::regclass::text FROM scheduled_jobs ORDER BY id")
                assert [w[0] for w in where] == [
                    f"scheduled_jobs_p{NOW:%Y_%m}",
                    f"scheduled_jobs_p{made[1]:%Y_%m}",
                    "scheduled_jobs_default",
                ]
                # The sequence goes on after the copied ids (and belongs to the new table).
                [[next_id]] = rows(conn, "SELECT nextval('scheduled_jobs_id_seq')")
                assert next_id > max(ids)
        migrate.downgrade(empty_database, "0030_i15analytics_counted_leads")
        with engine.connect() as conn:
            back = rows(conn, "SELECT id, dedupe_key FROM scheduled_jobs ORDER BY id")
            assert back == [(job_id, f"k{i}") for i, job_id in enumerate(ids)]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # unique in the table again
            insert(conn, "scheduled_jobs", **job, due_at=NOW, created_at=NOW, dedupe_key="k0")
    finally:
        engine.dispose()
