"""Migrations: upgrade head on an empty database, no drift from the models, downgrade base."""

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

import app.domains  # noqa: F401
from app.platform import migrate
from app.platform.db import Base, make_engine


@pytest.fixture
def empty_database(database_url, tmp_path):
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    url = make_url(database_url)
    name = f"followup_mig_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_head_matches_the_models_and_downgrade_base_empties(empty_database):
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            assert {t.name for t in Base.metadata.sorted_tables} <= tables
            diff = compare_metadata(
                MigrationContext.configure(
                    conn, opts={"compare_type": True, "include_name": migrate.include_name}
                ),
                Base.metadata,
            )
            assert diff == [], f"models and migrations differ: {diff}"
        migrate.downgrade(empty_database, "base")
        with engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_unedited_default_follow_up_rules_become_deferred_steps_on_upgrade(empty_database):
    # Rules as clinics seeded before 0024 have them: the follow-up made at once with a 3-day due
    # time (version 1, never edited) and the check-in on lead.stale (edited by the clinic: kept).
    from app.domains.auth.models import Clinic
    from app.domains.automation.models import AutomationRule

    now = datetime.now(UTC)
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database)
    rules = AutomationRule.__table__
    old_follow_up = [{"type": "create_task", "title": "Follow up", "delay": {"amount": 3, "unit": "days"}}]
    try:
        with engine.begin() as conn:
            clinic_id = conn.execute(
                sa.insert(Clinic.__table__)
                .values(name="C", settings={}, webhook_secret="s", created_at=now, updated_at=now)
                .returning(Clinic.__table__.c.id)
            ).scalar()
            common = {
                "clinic_id": clinic_id,
                "conditions": [],
                "priority": 40,
                "stop_processing": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
                "created_by": "system",
                "updated_by": "system",
            }
            conn.execute(
                sa.insert(rules),
                [
                    {
                        **common,
                        "name": "F",
                        "trigger": "lead.stage_changed",
                        "actions": old_follow_up,
                        "version": 1,
                        "default_key": "consultation_follow_up",
                    },
                    {
                        **common,
                        "name": "Mine",
                        "trigger": "lead.stale",
                        "actions": old_follow_up,
                        "version": 2,
                        "default_key": "pending_decision_check_in",
                    },
                ],
            )
        migrate.downgrade(empty_database, "0023_i16a_token_version")
        migrate.upgrade(empty_database, "0024_i14b_staleness")  # 0042 moves the follow-up again (below)
        with engine.connect() as conn:
            got = {r.default_key: r for r in conn.execute(sa.select(rules)).all()}
        follow_up = got["consultation_follow_up"]
        assert follow_up.version == 2 and follow_up.actions[0]["deferred"] is True
        assert follow_up.actions[0]["delay"] == {"amount": 3, "unit": "business_days"}
        assert got["pending_decision_check_in"].trigger == "lead.stale"  # the clinic's edit stays
    finally:
        engine.dispose()


def test_unedited_consultation_defaults_count_from_the_booking_and_the_check_in_on_upgrade(empty_database):
    """0042: the confirmation goes at booking (consultation.scheduled) and the follow-up counts from
    the check-in (consultation.attended) in clinics that never edited them; an edited one stays."""
    from app.domains.auth.models import Clinic
    from app.domains.automation.models import AutomationRule

    now = datetime.now(UTC)
    migrate.upgrade(empty_database, "0040_i42_user_email_per_clinic")
    engine = make_engine(empty_database)
    rules = AutomationRule.__table__
    try:
        with engine.begin() as conn:
            clinic_id = conn.execute(
                sa.insert(Clinic.__table__)
                .values(name="C", settings={}, webhook_secret="s", created_at=now, updated_at=now)
                .returning(Clinic.__table__.c.id)
            ).scalar()
            common = {
                "clinic_id": clinic_id,
                "conditions": [{"field": "event.new_stage", "operator": "equals", "value": "x"}],
                "actions": [{"type": "send_email", "subject": "s", "body": "b"}],
                "priority": 30,
                "stop_processing": False,
                "active": True,
                "created_at": now,
                "updated_at": now,
                "created_by": "system",
                "trigger": "lead.stage_changed",
            }
            conn.execute(
                sa.insert(rules),
                [
                    {**common, "name": "C", "version": 1, "updated_by": "system",
                     "default_key": "consultation_confirmation"},
                    {**common, "name": "F", "version": 2, "updated_by": "user:7",
                     "default_key": "consultation_follow_up"},
                ],
            )  # fmt: skip
        migrate.upgrade(empty_database)
        with engine.connect() as conn:
            got = {r.default_key: r for r in conn.execute(sa.select(rules)).all()}
        confirmation = got["consultation_confirmation"]
        assert confirmation.trigger == "consultation.scheduled" and confirmation.version == 2
        assert confirmation.conditions == [] and "{{ consultation_time }}" in confirmation.actions[0]["body"]
        assert got["consultation_follow_up"].trigger == "lead.stage_changed"  # the clinic's edit stays
    finally:
        engine.dispose()


def test_clinics_sender_identities_move_to_their_unique_columns_on_upgrade(empty_database):
    """Before 0038 two clinics could name one Messaging Service or email domain in their settings:
    the older keeps it, the later one loses it (and sends from the shared sender)."""
    now = datetime.now(UTC)
    migrate.upgrade(empty_database, "0037_i33_notification_opened_at")
    engine = make_engine(empty_database)
    clinics = sa.table(
        "clinics",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("settings", sa.JSON),
        sa.column("timezone", sa.String),
        sa.column("business_hours", sa.JSON),
        sa.column("default_phone_region", sa.String),
        sa.column("assignment_policy", sa.String),
        sa.column("webhook_secret", sa.String),
        sa.column("created_at", sa.DateTime),
        sa.column("updated_at", sa.DateTime),
    )
    pool = "MG" + "a" * 32
    older = {"sms_number": "+14155550100", "sms_messaging_service_sid": pool, "email_from": "a@Smile.com"}
    later = {"sms_messaging_service_sid": pool, "email_from": "b@smile.com", "sms_help_text": "Hi"}
    try:
        with engine.begin() as conn:
            for name, settings in (("Older", older), ("Later", later)):
                conn.execute(
                    sa.insert(clinics).values(
                        name=name,
                        settings=settings,
                        timezone="UTC",
                        business_hours={},
                        default_phone_region="US",
                        assignment_policy="round_robin",
                        webhook_secret="s",
                        created_at=now,
                        updated_at=now,
                    )
                )
        migrate.upgrade(empty_database)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT name, settings, sms_number, sms_messaging_service_sid, email_sender_domain "
                    "FROM clinics ORDER BY id"
                )
            ).all()
        (_, _, number, sid, domain), (_, kept, *held) = rows
        assert (number, sid, domain) == ("+14155550100", pool, "smile.com")
        assert held == [None, None, None]
        kept = kept if isinstance(kept, dict) else json.loads(kept)
        assert kept == {"sms_help_text": "Hi"}
        # 0045: what a clinic held is recorded as assigned to it by the operator, so it keeps working.
        with engine.connect() as conn:
            assigned = conn.execute(
                sa.text(
                    "SELECT c.name, a.kind, a.sender FROM assigned_sms_senders a "
                    "JOIN clinics c ON c.id = a.clinic_id ORDER BY a.kind"
                )
            ).all()
        assert [tuple(row) for row in assigned] == [
            ("Older", "messaging_service", pool),
            ("Older", "number", "+14155550100"),
        ]
    finally:
        engine.dispose()


def test_user_emails_become_unique_per_clinic_on_a_database_with_users(empty_database):
    # 0040 rebuilds `users` on SQLite (batch mode): with rows that refer to a user (a session), the
    # DROP of the old table must not trip the foreign key, and every row must survive.
    from app.domains.auth.models import Clinic, RefreshToken, User

    before = "0037_i33_notification_opened_at"
    now = datetime.now(UTC)
    migrate.upgrade(empty_database, before)
    engine = make_engine(empty_database)
    clinics, users = Clinic.__table__, User.__table__
    person = {"email": "pat@both.example", "name": "Pat", "role": "doctor", "active": True}
    person |= {"out_of_office": False, "token_version": 0, "created_at": now, "updated_at": now}
    try:
        with engine.begin() as conn:
            first, second = (
                conn.execute(
                    sa.insert(clinics)
                    .values(name=name, settings={}, webhook_secret="s", created_at=now, updated_at=now)
                    .returning(clinics.c.id)
                ).scalar()
                for name in ("A", "B")
            )
            user_id = conn.execute(
                sa.insert(users).values(clinic_id=first, **person).returning(users.c.id)
            ).scalar()
            conn.execute(
                sa.insert(RefreshToken.__table__).values(
                    jti="j", family_id="f", user_id=user_id, clinic_id=first, issued_at=now, expires_at=now
                )
            )
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(sa.insert(users).values(clinic_id=second, **person))  # unique everywhere
        migrate.upgrade(empty_database)
        with engine.begin() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(RefreshToken.__table__)).scalar() == 1
            conn.execute(sa.insert(users).values(clinic_id=second, **person))  # another clinic: fine
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(sa.insert(users).values(clinic_id=first, **person))  # the same clinic: not
            emails = conn.execute(sa.select(users.c.clinic_id, users.c.email).order_by(users.c.id)).all()
            assert emails == [(first, "pat@both.example"), (second, "pat@both.example")]
        # Going back needs one account per email: refused (nothing changed) until the copy goes.
        with pytest.raises(RuntimeError, match="several clinics"):
            migrate.downgrade(empty_database, before)
        with engine.begin() as conn:
            conn.execute(sa.delete(users).where(users.c.clinic_id == second))
        migrate.downgrade(empty_database, before)
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(users)).scalar() == 1
    finally:
        engine.dispose()


def _filler(column: dict, now: datetime):
    """A value of the column's type, for a row that only has to exist."""
    kind = column["type"]
    if isinstance(kind, sa.Boolean):
        return False
    if isinstance(kind, sa.Integer):
        return 1
    if isinstance(kind, sa.DateTime):
        return now
    if isinstance(kind, sa.Date):
        return now.date()
    if isinstance(kind, sa.JSON):
        return {}
    if isinstance(kind, sa.Numeric):
        return 0
    return "x"


def _insert_row(conn, table: str, now: datetime, **values) -> int:
    """Insert a row giving `values` and a filler for every other required column; returns its id."""
    reflected = {c["name"]: c for c in sa.inspect(conn).get_columns(table)}
    required = {
        name: _filler(c, now)
        for name, c in reflected.items()
        if not c["nullable"] and c.get("default") is None and name != "id"
    }
    columns = {**required, **values}
    typed = (sa.column(name, reflected[name]["type"]) for name in columns)
    target = sa.table(table, *typed, sa.column("id"))
    return conn.execute(sa.insert(target).values(**columns).returning(target.c.id)).scalar_one()


def _clinic_with_a_lead(conn, now: datetime) -> tuple[int, int, int]:
    """A clinic, a lead source of it and a lead from that source: their ids."""
    clinic = _insert_row(conn, "clinics", now, timezone="UTC", settings={}, business_hours={})
    source = _insert_row(conn, "lead_sources", now, clinic_id=clinic)
    return clinic, source, _insert_row(conn, "leads", now, clinic_id=clinic, source_id=source)


def test_consultations_the_webhook_made_are_booked_via_webhook_on_upgrade(empty_database):
    """0052: a consultation made by the booking system's webhook (created_by booking_system) is
    `webhook`, one a person or an API key made is `staff`."""
    now = datetime.now(UTC)
    migrate.upgrade(empty_database, "0047_i58_signing_secrets")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic, _, lead = _clinic_with_a_lead(conn, now)
            for who in ("booking_system", "user:1", "api_key:3"):
                _insert_row(
                    conn,
                    "consultations",
                    now,
                    clinic_id=clinic,
                    lead_id=lead,
                    created_by=who,
                    external_id=who,
                )
        migrate.upgrade(empty_database)
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT created_by, booked_via FROM consultations ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [
            ("booking_system", "webhook"),
            ("user:1", "staff"),
            ("api_key:3", "staff"),
        ]
    finally:
        engine.dispose()


def test_speed_to_leads_spans_are_backfilled_as_the_write_paths_work_them_out_on_upgrade(empty_database):
    """0068: each lead's kept spans (speed to lead, routing, human to first attempt and to first
    contact) from its firsts, to the last bit as the write paths' SQL gives them (rollups.stamp_spans),
    and as the reports define them: null where an end is missing or a split span would be negative."""
    from app.domains.analytics import rollups
    from app.domains.leads.models import SPAN_ENDS, Lead
    from tests.analytics.test_rollups import expected_spans

    now = datetime.now(UTC)
    at = [now + timedelta(minutes=m, microseconds=m * 7919 % 10**6) for m in range(12)]
    leads = [
        {"assigned_at": at[1], "first_task_at": at[2], "first_attempt_at": at[5],
         "first_contact_at": at[9], "first_outbound_contact_at": at[5]},
        {"assigned_at": at[7], "first_task_at": at[3], "first_attempt_at": at[2],
         "first_outbound_contact_at": now - timedelta(minutes=4)},  # attempt before task, contact before lead
        {"first_task_at": at[11]},  # no owner, never reached
        {},
    ]  # fmt: skip
    migrate.upgrade(empty_database, "0067_i64_response_group_columns")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic = _insert_row(conn, "clinics", now, timezone="UTC", settings={}, business_hours={})
            source = _insert_row(conn, "lead_sources", now, clinic_id=clinic)
            ids = [
                _insert_row(conn, "leads", now, clinic_id=clinic, source_id=source, created_at=now, **firsts)
                for firsts in leads
            ]
        migrate.upgrade(empty_database)
        columns = [
            Lead.id,
            Lead.created_at,
            *(getattr(Lead, end) for ends in SPAN_ENDS.values() for end in ends),
        ]
        spans = [getattr(Lead, span) for span in SPAN_ENDS]

        def kept():
            with engine.connect() as conn:
                return [row._asdict() for row in conn.execute(sa.select(*columns, *spans).order_by(Lead.id))]

        backfilled = kept()
        assert [row["id"] for row in backfilled] == ids
        for row in backfilled:
            for span, value in expected_spans(row).items():
                # SQLite's julianday() keeps whole milliseconds (each end); PostgreSQL microseconds.
                assert (row[span] is None) == (value is None), (span, row)
                assert value is None or abs(row[span] - value) < 0.01, (span, row)
        assert [row["routing_seconds"] is None for row in backfilled] == [False, False, True, True]
        assert backfilled[1]["human_attempt_seconds"] is None and backfilled[1]["speed_to_lead_seconds"] < 0
        with engine.begin() as conn:
            rollups.stamp_spans(conn)
        assert kept() == backfilled
    finally:
        engine.dispose()


def test_automated_messages_are_counted_by_month_on_upgrade(empty_database):
    """0069: every automated message counted in its clinic's UTC month (replied ones apart); other
    activities counted nowhere. 0071: the same by channel and sequence, and the triggers move them."""
    from app.domains.analytics import month_changes, rollups
    from app.domains.analytics.models import MessageMonth

    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    kinds = [
        ("SMS", "OUTBOUND", "system", True, now),
        ("EMAIL", "OUTBOUND", "system", False, now),
        ("DIRECT_MESSAGE", "OUTBOUND", "system", False, now + timedelta(hours=1)),  # April in UTC
        ("SMS", "OUTBOUND", "user:1", False, now),  # a person's: not automated
        ("SMS", "INBOUND", "system", False, now),
    ]
    migrate.upgrade(empty_database, "0068_i64_speed_spans")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic, _, lead = _clinic_with_a_lead(conn, now)
            for type_, direction, actor, replied, at in kinds:
                _insert_row(
                    conn, "lead_activities", now, clinic_id=clinic, lead_id=lead, type=type_,
                    direction=direction, actor=actor, replied=replied, occurred_at=at,
                )  # fmt: skip
        migrate.upgrade(empty_database, "0069_i64_message_months")
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT clinic_id, month, messages, replied FROM analytics_message_months ORDER BY month"
                )
            ).all()
            counted = conn.execute(sa.text("SELECT month_counted FROM lead_activities ORDER BY id")).scalars()
            assert [bool(c) for c in counted] == [True, True, True, False, False]
        assert [(c, str(m), n, r) for c, m, n, r in rows] == [
            (clinic, "2026-03-01", 2, 1),
            (clinic, "2026-04-01", 1, 0),
        ]
        # 0071: the same counts by channel, sequence (none here: '' and 0) and reply-time bucket
        # (none timed here: -1), kept by triggers whatever writes the messages.
        migrate.upgrade(empty_database)
        with engine.begin() as conn:
            kept = month_changes.kept(conn, MessageMonth.__table__)
            assert kept == rollups.recomputed_message_months(conn)
            assert kept == {
                (clinic, date(2026, 3, 1), "", 0, -1): (2, 1),
                (clinic, date(2026, 4, 1), "", 0, -1): (1, 0),
            }
            answered = "message_channel = 'sms', replied = true, reply_seconds = 90"
            conn.execute(sa.text(f"UPDATE lead_activities SET {answered}"))
            assert month_changes.kept(conn, MessageMonth.__table__) == {
                (clinic, date(2026, 3, 1), "sms", 0, 1): (2, 2),  # 90 s: the second minute's bucket
                (clinic, date(2026, 4, 1), "sms", 0, 1): (1, 1),
            }
    finally:
        engine.dispose()


def test_tasks_are_counted_by_month_on_upgrade(empty_database):
    """0070: the tasks already there counted in their clinic's UTC month of due, as the follow-up
    report counts them; from then on the triggers count each write."""
    from app.domains.analytics import month_changes, task_counts
    from app.domains.analytics.models import TaskMonth

    now = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    tasks = [  # status, due, completed at, outcome
        ("COMPLETED", now, now - timedelta(hours=1), "done"),
        ("COMPLETED", now, now + timedelta(minutes=10), "no_answer"),  # late
        ("OVERDUE", now, None, None),
        ("CANCELLED", now + timedelta(hours=1), None, None),  # April in UTC
    ]
    migrate.upgrade(empty_database, "0069_i64_message_months")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            clinic, _, lead = _clinic_with_a_lead(conn, now)
            user = _insert_row(conn, "users", now, clinic_id=clinic)
            for status, due, completed, outcome in tasks:
                _insert_row(
                    conn, "lead_tasks", now, clinic_id=clinic, lead_id=lead, assigned_to_id=user,
                    status=status, due_at=due, completed_at=completed, outcome=outcome,
                )  # fmt: skip
        migrate.upgrade(empty_database)
        with engine.connect() as conn:
            assert month_changes.kept(conn, TaskMonth.__table__) == task_counts.recomputed(conn)
            assert month_changes.kept(conn, TaskMonth.__table__) == {
                # due, completed, on time, cancelled, open, done, no answer, rescheduled, not needed
                (clinic, date(2026, 3, 1)): (3, 2, 1, 0, 1, 1, 1, 0, 0),
                (clinic, date(2026, 4, 1)): (1, 0, 0, 1, 0, 0, 0, 0, 0),
            }
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE lead_tasks SET status = 'CANCELLED' WHERE status = 'OVERDUE'"))
        with engine.connect() as conn:
            march = month_changes.kept(conn, TaskMonth.__table__)[(clinic, date(2026, 3, 1))]
            assert march == (3, 2, 1, 1, 0, 1, 1, 0, 0)
    finally:
        engine.dispose()


def test_the_unedited_break_up_note_says_when_the_email_goes_on_upgrade(empty_database):
    # 0076: the seeded note ("at the first hour the family may be written to") becomes one that
    # quotes the email's time; a clinic's own note stays.
    from app.domains.auth.models import Clinic
    from app.domains.automation.models import AutomationRule

    old_note = (
        "A break-up email is planned: it goes at the first hour the family may be written to, unless "
        "they reply or book first. Consider marking the lead lost."
    )
    now = datetime.now(UTC)
    migrate.upgrade(empty_database)
    migrate.downgrade(empty_database, "0075_i74_held_messages")
    engine = make_engine(empty_database)
    rules = AutomationRule.__table__
    try:
        with engine.begin() as conn:
            common = {"settings": {}, "webhook_secret": "s", "created_at": now, "updated_at": now}
            clinics = [
                conn.execute(
                    sa.insert(Clinic.__table__).values(name=name, **common).returning(Clinic.__table__.c.id)
                ).scalar()
                for name in ("Seeded", "Edited")
            ]
            notes = ((old_note, "system"), ("Call them!", "7"))
            for clinic_id, (note, by) in zip(clinics, notes, strict=True):
                conn.execute(
                    sa.insert(rules).values(
                        clinic_id=clinic_id,
                        name="B",
                        trigger="lead.attempt_failed",
                        conditions=[],
                        actions=[{"type": "notify", "lead_owner": True, "title": "T", "body": note}],
                        priority=70,
                        stop_processing=False,
                        active=True,
                        created_at=now,
                        updated_at=now,
                        created_by="system",
                        updated_by=by,
                        version=2,
                        default_key="three_failed_attempts",
                    )
                )
        migrate.upgrade(empty_database)
        with engine.connect() as conn:
            got = dict(conn.execute(sa.select(rules.c.clinic_id, rules.c.actions)).all())
        [seeded_note] = [a["body"] for a in got[clinics[0]] if a["type"] == "notify"]
        assert seeded_note == "The break-up email {{ email_goes_at }}. Consider marking the lead lost."
        assert got[clinics[1]][0]["body"] == "Call them!"  # the clinic's edit stays
    finally:
        engine.dispose()
