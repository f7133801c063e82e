"""Erasure (issue 34 item 7, issue 42 item 3): a lead that touched every domain (imported through
the bulk import API, enrolled in a sequence, an SMS that failed with a provider error quoting its
number, a rule with a condition on its city that fired, a webhook, an audited update of its address)
is erased through the API, then the whole database is dumped (SQLite's iterdump; PostgreSQL's
pg_dump) and none of its name, phone, email, address, date of birth or notes is found: not in
clear, and not inside any Fernet token of the dump decrypted with the PHI key. A tombstone keeps the
counts; a new capture of the person is stored but never contacted; another clinic's lead is a 404;
only the clinic admin may erase. Each copy listed in app/domains/privacy/erasure.COPIES has its test here
(or names it there)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from app.domains.automation.models import AutomationStep, SequenceEnrollment
from app.domains.leads.models import Lead, Suppression
from app.domains.outbound.models import Notification
from app.domains.privacy import erasure
from app.domains.tasks.models import LeadTask
from app.platform import clock, phi, phi_policy
from app.platform.audit.models import AuditEvent
from app.platform.scheduling.models import ScheduledJob
from tests.automation.kit import open_all_day, run_events, steps_of
from tests.automation.outreachkit import call, enroll, make_sequence
from tests.conftest import TEST_PHI_KEY
from tests.lead_messages.kit import send
from tests.leadkit import create_lead
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import sms_settings, use
from tests.requirements import need, need_postgres
from tests.tasks.taskkit import run_at
from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, subscribe

FIRST, LAST = "Zebulon", "Quillfeather"
PATIENT_FIRST = "Philippa"
SIBLING = "Thaddeus"  # a further patient of the family (lead_patients)
PHONE, PHONE_E164 = "(415) 555-0123", "+14155550123"
EMAIL = "zeb.quillfeather@example.org"
DOB = "2009-04-17"
NOTES = "Fears needles; uses an asthma inhaler"
TASK_NOTE = "Ask whether the inhaler was renewed"
OUTCOME_NOTE = "Mother says the brace rubs at night"
ACTIVITY_NOTE = "Discussed her asthma and the sedation options"
LOST_NOTE = "Quillfeather family moved away"
STREET, NEW_STREET, CITY = "9 Quill Street", "11 Featherfall Lane", "Quillton"
NEEDLES = (FIRST, LAST, PATIENT_FIRST, SIBLING, PHONE_E164, "4155550123", EMAIL, DOB, NOTES, TASK_NOTE,
           OUTCOME_NOTE, ACTIVITY_NOTE, "asthma", "inhaler", STREET, NEW_STREET, CITY,
           "Featherfall")  # fmt: skip
# A rule that fires on a note for a lead whose city is known: its why-trail sees the city; its
# definition holds no value of the lead's (`exists`).
CITY_RULE = {
    "name": "Nudge after a note",
    "trigger": "activity.logged",
    "conditions": [
        {"field": "event.activity_type", "operator": "equals", "value": "NOTE"},
        {"field": "lead.city", "operator": "exists", "value": True},
    ],
    "actions": [
        {"type": "create_task", "title": "Follow the note up", "task_type": "CALL"},
        {"type": "notify", "lead_owner": True, "title": "Note", "delay": {"amount": 2, "unit": "hours"}},
    ],
}
ROOT = Path(__file__).resolve().parents[2]
TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_\-=]+")


@pytest.fixture
def receiver():
    r = Receiver(failures=0)
    yield r
    r.close()


def _import_person(app, client, tenant, **extra) -> int:
    """The person imported through the bulk import API, its chunk run as a worker would; its lead."""
    row = {
        "external_id": "zeb-1", "first_name": FIRST, "last_name": LAST, "phone": PHONE, "email": EMAIL,
        "patient_dob": DOB, "notes": NOTES, "patient_first_name": PATIENT_FIRST, "patient_last_name": LAST,
        "patient_relationship": "CHILD", "address_line1": STREET, "city": CITY, "state": "Vermont",
        "treatment_interest": ["INVISALIGN"], **extra,
    }  # fmt: skip
    started = client.post("/api/leads/import", json=[row], headers=tenant.headers("treatment_coordinator"))
    assert started.status_code == 202, started.get_json()
    for chunk in _import_chunks(app, started.get_json()["id"]):
        assert run_at(app, chunk, clock.now()) == "done"
    rows = client.get(f"/api/bulk-jobs/{started.get_json()['id']}/rows", headers=tenant.headers()).get_json()
    assert rows[0]["outcome"] == "created", rows
    return rows[0]["lead_id"]


def _import_chunks(app, bulk_id: int) -> list[ScheduledJob]:
    with app.extensions["followup.db"].unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.kind == "leads.import_chunk", ScheduledJob.subject_id == bulk_id
                )
            )
        )


def _fail_an_sms(app, client, db, tenant, lead_id: int, monkeypatch) -> None:
    """An SMS to the lead refused by the provider (the fake Twilio quotes the number), then its
    stored error made as it was before errors were redacted (old rows keep it), and retried by an
    admin (the retry's audit copies the error)."""
    settings = app.config["SETTINGS"]
    with sms_provider() as (provider, url):
        use(monkeypatch, settings, **sms_settings(url))
        provider.invalid_numbers = {PHONE_E164}
        notification_id = send(client, tenant, lead_id, channel="sms", body=f"Hi {FIRST}, see you")[
            "notification_id"
        ]
        with db.unit_of_work() as session:
            [job] = session.scalars(
                sa.select(ScheduledJob).where(
                    ScheduledJob.subject_type == "notification", ScheduledJob.subject_id == notification_id
                )
            ).all()
        # At its due time: an SMS asked for in the clinic's quiet hours waits for their end.
        run_at(app, job, max(clock.now(), job.due_at))
        with db.unit_of_work() as session:
            failed = session.get(Notification, notification_id)
            assert failed.status == "failed", failed.last_error
            failed.last_error = (
                f"invalid phone number '{PHONE_E164}'; The 'To' number {PHONE_E164} is not valid"
            )
    retried = client.post(f"/api/notifications/{notification_id}/retry", json={}, headers=tenant.headers())
    assert retried.status_code == 200, retried.get_json()


def _touch_every_domain(app, client, db, tenant, receiver, monkeypatch) -> int:
    """A lead imported, then assigned, with tasks (one done with notes, one made idempotently), a
    note that fires a rule on its city, an update of its address, a sequence, a message sent to it,
    an SMS refused quoting its number, events forwarded to a webhook; returns its id."""
    open_all_day(client, tenant, clock.now())
    subscribe(client, tenant, receiver.url, ["lead.created", "lead.lost", "task.overdue"])
    assert client.post("/api/follow-up-rules", json=CITY_RULE, headers=tenant.headers()).status_code == 201
    lead_id = _import_person(app, client, tenant)
    coordinator = tenant.headers("treatment_coordinator")
    assigned = client.post(
        f"/api/leads/{lead_id}/assign",
        json={"user_id": tenant.users["treatment_coordinator"].id},
        headers=tenant.headers(),
    )
    assert assigned.status_code == 200, assigned.get_json()
    due = (clock.now() + timedelta(days=1)).isoformat()
    task = client.post(
        f"/api/leads/{lead_id}/tasks",
        json={"title": f"Call {FIRST} {LAST}", "type": "CALL", "due_at": due, "description": TASK_NOTE},
        headers={**coordinator, "Idempotency-Key": "task-zeb"},  # its answer is stored, naming the lead
    )
    assert task.status_code == 201, task.get_json()
    done = client.post(
        f"/api/leads/tasks/{task.get_json()['id']}/complete",
        json={"outcome": "done", "notes": OUTCOME_NOTE},
        headers=coordinator,
    )
    assert done.status_code == 200, done.get_json()
    open_task = client.post(
        f"/api/leads/{lead_id}/tasks",
        json={
            "title": f"Confirm {PATIENT_FIRST}'s visit",
            "type": "CALL",
            "due_at": due,
            "description": TASK_NOTE,
        },
        headers=coordinator,
    )
    assert open_task.status_code == 201, open_task.get_json()
    note = client.post(
        f"/api/leads/{lead_id}/activities", json={"type": "NOTE", "notes": ACTIVITY_NOTE}, headers=coordinator
    )
    assert note.status_code == 201, note.get_json()
    moved = client.put(
        f"/api/leads/{lead_id}", json={"address_line1": NEW_STREET, "city": CITY}, headers=coordinator
    )
    assert moved.status_code == 200, moved.get_json()  # audited: lead.update with before and after
    siblings = [
        {"first_name": PATIENT_FIRST, "last_name": LAST, "relationship": "CHILD"},
        {"first_name": SIBLING, "last_name": LAST, "birth_year": 2012, "relationship": "CHILD"},
    ]
    family = client.put(f"/api/leads/{lead_id}", json={"patients": siblings}, headers=coordinator)
    assert family.status_code == 200, family.get_json()
    sequence = make_sequence(client, tenant, [call(1, "days")])
    enroll(client, tenant, lead_id, sequence["id"])
    _fail_an_sms(app, client, db, tenant, lead_id, monkeypatch)
    send(
        client,
        tenant,
        lead_id,
        channel="email",
        subject=f"Hello {FIRST}",
        body=f"Dear {FIRST}, about the {NOTES}",
    )
    process_events(app, db, at=clock.now() + timedelta(minutes=1))
    fired = [s for s in steps_of(app, lead_id) if s.rule_id is not None and s.action_type == "notify"]
    assert any(c.get("seen") == CITY for s in fired for c in s.conditions), "the rule saw the city"
    for job in deliveries(db):
        assert run_at(app, job, clock.now() + timedelta(minutes=1)) == "done"
    assert receiver.accepted, "the webhook received the lead's events"
    return lead_id


def _dump(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(make_url(database_url).database) as conn:
            return "\n".join(conn.iterdump())
    url = make_url(database_url).set(drivername="postgresql")
    need("postgres", shutil.which("pg_dump") is not None, "needs the pg_dump binary")
    done = subprocess.run(
        ["pg_dump", "--data-only", url.render_as_string(hide_password=False)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _found_in(dump: str) -> list[str]:
    """The needles in the dump, in clear or inside any token the PHI key decrypts."""
    texts = [dump.lower()]
    for token in set(TOKEN.findall(dump)):
        try:
            texts.append(phi.decrypt(token, keys=TEST_PHI_KEY).lower())
        except RuntimeError:
            continue
    return sorted({n for n in NEEDLES for text in texts if n.lower() in text})


def _erase_and_check(app, client, db, tenant, receiver, database_url, monkeypatch):
    lead_id = _touch_every_domain(app, client, db, tenant, receiver, monkeypatch)
    written = set(_found_in(_dump(database_url)))
    assert written >= {FIRST, SIBLING, EMAIL, DOB, NOTES, STREET, NEW_STREET, CITY}, (
        "the story wrote the data"
    )
    assert None not in _recipient_indexes(db, lead_id), "its messages are indexed by recipient"

    resp = client.post(f"/api/leads/{lead_id}/erase", headers=tenant.headers("clinic_admin"))

    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["lead_id"] == lead_id and resp.get_json()["suppressed"] is True
    assert _found_in(_dump(database_url)) == []
    with db.unit_of_work() as session:  # nor its blind indexes (suppression keeps keyed digests, by design)
        assert session.scalar(sa.select(Lead.patient_dob_index).where(Lead.id == lead_id)) is None
    assert _recipient_indexes(db, lead_id) == [None, None]  # the SMS and the email: the recipient's index
    return lead_id


def _recipient_indexes(db, lead_id: int) -> list[str | None]:
    """The blind index of the recipient (the console's recipient filter) of each message to the lead."""
    with db.unit_of_work() as session:
        return list(
            session.scalars(
                sa.select(Notification.to_address_index)
                .where(Notification.lead_id == lead_id)
                .order_by(Notification.id)
            )
        )


def test_an_erased_lead_leaves_nothing_of_its_person_in_the_database(
    app, client, db, tenant, receiver, database_url, monkeypatch
):
    lead_id = _erase_and_check(app, client, db, tenant, receiver, database_url, monkeypatch)

    tombstone = client.get(f"/api/leads/{lead_id}", headers=tenant.headers())
    assert tombstone.status_code == 200
    kept = tombstone.get_json()
    assert kept["first_name"] == "[erased]" and kept["phone"] is None and kept["email"] is None
    assert kept["patient_dob"] is None and kept["notes"] is None
    assert kept["pipeline_stage"] and kept["source_id"] and kept["created_at"]  # analytics keep counting it
    with db.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        assert lead.erased_at is not None and lead.do_not_contact and lead.status == "ARCHIVED"
        open_jobs = session.scalars(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type.in_(("lead", "task")),
                ScheduledJob.status.in_(("pending", "dispatched")),
            )
        ).all()
        assert [j for j in open_jobs if j.subject_type == "lead" and j.subject_id == lead_id] == []
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 2  # phone, email
        enrolled = session.scalars(
            sa.select(SequenceEnrollment).where(SequenceEnrollment.lead_id == lead_id)
        ).all()
        assert all(e.status != "active" for e in enrolled)
        [audit] = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "lead.erase")).all()
        assert audit.subject_id == str(lead_id) and audit.actor == f"user:{tenant.users['clinic_admin'].id}"


def test_an_erased_person_captured_again_is_stored_but_never_contacted(
    app, client, db, tenant, receiver, database_url, monkeypatch
):
    lead_id = _erase_and_check(app, client, db, tenant, receiver, database_url, monkeypatch)

    again = create_lead(client, tenant, role="front_desk", first_name="Zeb", last_name="Q", phone=PHONE)
    by_email = create_lead(
        client, tenant, role="front_desk", first_name="Z", last_name="Q", email=EMAIL.upper()
    )
    stranger = create_lead(client, tenant, role="front_desk", first_name="Ann", phone="(415) 555-0199")

    with db.unit_of_work() as session:
        flags = {
            lead.id: (lead.do_not_contact, lead.sms_opt_out, lead.email_opt_out)
            for lead in session.scalars(sa.select(Lead).where(Lead.id != lead_id))
        }
    assert flags[again["id"]] == (True, True, True)
    assert flags[by_email["id"]] == (True, True, True)
    assert flags[stranger["id"]] == (False, False, False)


def test_on_postgresql_pg_dump_finds_nothing_either(
    app, client, db, tenant, receiver, database_url, monkeypatch
):
    need_postgres(database_url, "pg_dump of the whole database")
    _erase_and_check(app, client, db, tenant, receiver, database_url, monkeypatch)


def test_only_the_clinic_admin_erases_and_another_clinics_lead_is_404(client, tenant, make_tenant):
    lead = create_lead(client, tenant)
    for role in ("front_desk", "treatment_coordinator", "doctor"):
        assert client.post(f"/api/leads/{lead['id']}/erase", headers=tenant.headers(role)).status_code == 403
    other = make_tenant("Other clinic")
    assert client.post(f"/api/leads/{lead['id']}/erase", headers=other.headers()).status_code == 404
    assert client.get(f"/api/leads/{lead['id']}", headers=tenant.headers()).get_json()["first_name"] == "Jane"


def test_an_api_key_cannot_be_given_the_erase_permission(client, tenant):
    resp = client.post(
        "/api/api-keys", json={"name": "integration", "permissions": ["lead:erase"]}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "permissions" in str(resp.get_json())


def test_the_cli_erases_a_lead_by_id_and_refuses_an_unknown_one(client, db, tenant, migrated_database):
    lead = create_lead(
        client, tenant, first_name="Cornelius", email="cornelius@example.org", notes="jaw pain"
    )
    env = {**os.environ, "DATABASE_URL": migrated_database, "PYTHONPATH": str(ROOT)}

    def followup(*args):
        return subprocess.run(
            [sys.executable, "-m", "app.cli", "leads", "erase", *args],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    done = followup(str(lead["id"]), "--json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["lead_id"] == lead["id"]
    with db.unit_of_work() as session:
        erased = session.get(Lead, lead["id"])
        assert (erased.first_name, erased.email, erased.notes) == ("[erased]", None, None)
        [audit] = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "lead.erase")).all()
        assert audit.actor == "cli"
    missing = followup("999999")
    assert missing.returncode == 1 and "not found" in missing.stderr


def _erase(client, tenant, lead_id: int) -> None:
    resp = client.post(f"/api/leads/{lead_id}/erase", headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200, resp.get_json()


def test_the_lead_row_keeps_no_phi_field_of_the_policy(app, client, db, tenant):
    lead_id = _import_person(app, client, tenant)
    _erase(client, tenant, lead_id)
    with db.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        kept = {name: getattr(lead, name) for name in phi_policy.LEAD_FIELDS}
    assert kept["state"] is None and kept["treatment_interest"] == [] and kept["city"] is None
    assert kept["patient_relationship"] == "SELF"  # NOT NULL: what a capture that said nothing gets
    assert [name for name, value in kept.items() if value not in (None, [], "SELF")] == []


def test_rule_conditions_and_origins_keep_their_shape_not_the_values(app, client, db, tenant):
    open_all_day(client, tenant, clock.now())
    assert client.post("/api/follow-up-rules", json=CITY_RULE, headers=tenant.headers()).status_code == 201
    lead_id = _import_person(app, client, tenant)
    note = client.post(
        f"/api/leads/{lead_id}/activities", json={"type": "NOTE", "notes": "n"}, headers=tenant.headers()
    )
    assert note.status_code == 201
    run_events(app, lead_id, clock.now())
    assert CITY in json.dumps([s.conditions for s in steps_of(app, lead_id)])

    _erase(client, tenant, lead_id)

    with db.unit_of_work() as session:
        steps = session.scalars(sa.select(AutomationStep).where(AutomationStep.lead_id == lead_id)).all()
        tasks = session.scalars(sa.select(LeadTask).where(LeadTask.lead_id == lead_id)).all()
        jobs = session.scalars(
            sa.select(ScheduledJob).where(
                ScheduledJob.subject_type == "lead", ScheduledJob.subject_id == lead_id
            )
        ).all()
        trails = (
            [s.conditions for s in steps] + [t.origin for t in tasks] + [j.origin for j in jobs if j.origin]
        )
    by_rule = [s for s in steps if any(c.get("field") == "lead.city" for c in s.conditions)]
    assert by_rule and all(
        [(c["field"], c["operator"], c["seen"], c["result"]) for c in s.conditions]
        == [("event.activity_type", "equals", None, None), ("lead.city", "exists", None, None)]
        for s in by_rule
    )
    assert any(t.origin.get("rule_id") for t in tasks)  # which rule made the task stays
    assert CITY not in json.dumps(trails) and "NOTE" not in json.dumps(trails)


def test_audit_details_of_every_action_on_the_lead_are_scrubbed(app, client, db, tenant, monkeypatch):
    lead_id = _import_person(app, client, tenant)
    moved = client.put(f"/api/leads/{lead_id}", json={"address_line1": NEW_STREET}, headers=tenant.headers())
    assert moved.status_code == 200, moved.get_json()
    _fail_an_sms(app, client, db, tenant, lead_id, monkeypatch)

    def audited() -> str:
        with db.unit_of_work() as session:
            return json.dumps([(a.action, a.before, a.after) for a in session.scalars(sa.select(AuditEvent))])

    assert NEW_STREET in audited() and PHONE_E164 in audited()  # lead.update; notification.retry
    _erase(client, tenant, lead_id)
    assert NEW_STREET not in audited() and STREET not in audited() and PHONE_E164 not in audited()
    assert '"lead.update"' in audited() and '"notification.retry"' in audited()  # the actions stay


def test_an_open_import_chunk_loses_the_persons_row(app, client, db, tenant):
    lead_id = _import_person(app, client, tenant)
    other = {"external_id": "ann-1", "first_name": "Ann", "last_name": "Other", "phone": "(415) 555-0177"}
    again = {"external_id": "zeb-2", "first_name": FIRST, "last_name": LAST, "email": EMAIL}
    started = client.post(
        "/api/leads/import", json=[again, other], headers=tenant.headers("treatment_coordinator")
    )
    assert started.status_code == 202  # no worker: its chunk waits, the person's row inside

    _erase(client, tenant, lead_id)

    [chunk] = _import_chunks(app, started.get_json()["id"])
    rows = json.loads(phi.decrypt(chunk.payload["rows"], keys=TEST_PHI_KEY))
    assert rows == [None, other]
    assert run_at(app, chunk, clock.now()) == "done"
    report = client.get(
        f"/api/bulk-jobs/{started.get_json()['id']}/rows", headers=tenant.headers()
    ).get_json()
    assert [(r["outcome"], r["field"]) for r in report] == [("invalid", "row"), ("created", None)]
    with db.unit_of_work() as session:  # every finished chunk dropped its rows
        payloads = session.scalars(
            sa.select(ScheduledJob.payload).where(ScheduledJob.kind == "leads.import_chunk")
        )
        assert all(p["rows"] is None for p in payloads)


def test_other_imports_reports_keep_only_the_id_of_the_erased_match(app, client, db, tenant):
    """Issue 42: a row of another import refused as a duplicate of the lead names it in `matches`
    with why it matched (phone, email, name and date of birth): read against the importer's file,
    the person's values. Erasure keeps the match's lead id and drops why; the other matches stay."""
    lead_id = _import_person(app, client, tenant)
    bystander = create_lead(client, tenant, first_name="Ann", last_name="Other", email="ann@example.org")
    refused = {"external_id": "zeb-dup", "first_name": "Z", "last_name": "Q", "phone": PHONE,
               "email": "ann@example.org"}  # fmt: skip
    started = client.post(
        "/api/leads/import?reject_duplicates=true",
        json=[refused],
        headers=tenant.headers("treatment_coordinator"),
    )
    assert started.status_code == 202, started.get_json()
    for chunk in _import_chunks(app, started.get_json()["id"]):
        assert run_at(app, chunk, clock.now()) == "done"
    rows_url = f"/api/bulk-jobs/{started.get_json()['id']}/rows"

    def matches() -> list[dict]:
        [row] = client.get(rows_url, headers=tenant.headers()).get_json()
        assert row["outcome"] == "duplicate" and row["external_id"] == "zeb-dup", row
        return sorted(row["matches"], key=lambda match: match["lead_id"])

    assert matches() == [
        {"lead_id": lead_id, "matched": ["phone"]},
        {"lead_id": bystander["id"], "matched": ["email"]},
    ]

    erased = client.post(f"/api/leads/{lead_id}/erase", headers=tenant.headers("clinic_admin"))

    assert erased.status_code == 200, erased.get_json()
    assert matches() == [{"lead_id": lead_id}, {"lead_id": bystander["id"], "matched": ["email"]}]
    # The answer counts this row and the person's own (the first import's), and the import chunks.
    assert erased.get_json()["import_reports"] == 2
    assert erased.get_json()["import_payloads"] == 0  # both imports finished: their rows already gone


def test_the_erasure_answer_carries_every_count_the_service_returns(app, client, db, tenant):
    """Issue 42: the answer's schema drops what it does not list; every count erasure makes is in it."""
    lead = create_lead(client, tenant)
    with db.unit_of_work() as session:
        counts = erasure.erase(
            session=session, clinic_id=tenant.id, lead_id=lead["id"], actor_ref="test", now=clock.now()
        )
    answer = client.post(f"/api/leads/{lead['id']}/erase", headers=tenant.headers("clinic_admin")).get_json()
    assert set(answer) == set(counts)
    assert answer["import_payloads"] == 0 and answer["import_reports"] == 0


def test_erasure_cancels_the_leads_consultations_and_drops_their_ids(app, client, db, tenant):
    from icalendar import Calendar

    from app.domains.consultations.models import Consultation
    from tests.automation.outreachkit import process_events as run_all_events
    from tests.consultations.kit import book
    from tests.consultations.test_appointment_webhook import tenant_zone

    coordinator = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant)
    assigned = client.post(
        f"/api/leads/{lead['id']}/assign", json={"user_id": coordinator}, headers=tenant.headers()
    )
    assert assigned.status_code == 200, assigned.get_json()
    booked = book(client, tenant, lead["id"], clock.now() + timedelta(days=1), external_id="apt-77")
    feed = client.post("/api/me/calendar-token", headers=tenant.headers("treatment_coordinator")).get_json()[
        "url"
    ]

    def in_feed() -> list:
        events = Calendar.from_ical(client.get(feed).data).walk("VEVENT")
        return [e for e in events if str(e["uid"]) == f"consultation-{booked['id']}@followup-engine"]

    assert in_feed()
    run_all_events(app, db)  # the booking's rules: its reminders wait as scheduled steps
    assert [s for s in steps_of(app, lead["id"]) if s.status == "scheduled"]
    erased = client.post(f"/api/leads/{lead['id']}/erase", headers=tenant.headers("clinic_admin"))
    assert erased.status_code == 200 and erased.get_json()["consultations_cancelled"] == 1
    assert not in_feed()
    day = datetime.fromisoformat(booked["starts_at"]).astimezone(tenant_zone(client, tenant)).date()
    day = client.get(f"/api/consultations?date={day.isoformat()}&status=scheduled", headers=tenant.headers())
    assert booked["id"] not in [c["id"] for c in day.get_json()]
    with db.unit_of_work() as session:
        row = session.get(Consultation, booked["id"])
        assert (row.status, row.external_id) == ("cancelled", None)
        pending = session.scalars(
            sa.select(ScheduledJob.kind).where(
                ScheduledJob.subject_type == "consultation",
                ScheduledJob.subject_id == booked["id"],
                ScheduledJob.status.in_(("pending", "dispatched")),
            )
        )
        assert list(pending) == []  # its no-show check ended
    assert [s.status for s in steps_of(app, lead["id"]) if s.status == "scheduled"] == []


def test_an_email_reply_to_an_erased_lead_is_dropped(app, client, db, tenant, monkeypatch):
    from app.domains.activities.models import LeadActivity
    from app.platform.stream.models import StreamEvent
    from tests.intake.test_sendgrid_inbound import SECRET, post_parse, reply_address
    from tests.outbound.kit import use

    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, sendgrid_inbound_secret=SECRET, email_inbound_domain="reply.example")
    lead = create_lead(client, tenant, email="jane@example.com")
    address = reply_address(settings, lead["id"])  # the Reply-To of the emails the family got
    assert (
        client.post(f"/api/leads/{lead['id']}/erase", headers=tenant.headers("clinic_admin")).status_code
        == 200
    )

    def stored() -> tuple[int, int]:
        with db.unit_of_work() as session:
            activities = session.scalar(
                sa.select(sa.func.count()).select_from(LeadActivity).where(LeadActivity.lead_id == lead["id"])
            )
            streamed = session.scalar(sa.select(sa.func.count()).select_from(StreamEvent))
            return activities, streamed

    before = stored()
    for headers in (
        "Message-ID: <r-1@example.com>",
        "Message-ID: <r-2@example.com>\nAuto-Submitted: auto-replied",
    ):
        resp = post_parse(client, address, headers=headers, text="Jane Doe, my DOB is 2011-04-02")
        assert resp.status_code == 200 and resp.get_json() == {"matched": False}
    assert stored() == before  # no note, no stream event
