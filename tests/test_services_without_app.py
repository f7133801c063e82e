"""Services of notifications, digests, auth, bulk, idempotency and protected fields run with
explicit wiring and no Flask app: a Database built here with its settings, dispatcher and Redis (as
create_app builds it), plain sessions from it, the settings and the clock passed in.

Before the wiring was explicit, the digest sweep, login, the bulk task start and the idempotency
purge read their settings from `current_app`, and the protected fields' column types their key, so
each failed outside an app context ("Working outside of application context").
tests/scheduling/test_without_app.py does the same for the ledger.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import has_app_context

import app.domains  # noqa: F401 - every domain's job kinds, as create_app wires them
from app.bootstrap import bootstrap
from app.domains.auth import service as auth
from app.domains.bulk import service as bulk
from app.domains.intake import service as intake
from app.domains.leads.models import Lead
from app.domains.outbound import inbox, outgoing, preferences, service
from app.domains.outbound.models import Notification
from app.domains.outbound.worker import attempts
from app.domains.tasks.alerts import digest
from app.platform import clock, phi
from app.platform.db import Database, PageRequest
from app.platform.db.protected import use_keys
from app.platform.idempotency import service as idempotency
from app.platform.idempotency.models import IdempotencyKey
from app.platform.redis_clients import redis_client
from app.platform.roles import ROLE_PERMISSIONS, Actor, Role
from app.platform.scheduling import run_job
from app.platform.scheduling.dispatch import Dispatcher
from app.platform.scheduling.models import ScheduledJob
from tests.conftest import test_settings, truncate_all

PASSWORD = "correct horse battery staple"


@pytest.fixture
def wired(migrated_database, redis_url):
    """What create_app builds, built by hand: no Flask app anywhere (the engine by the bootstrap)."""
    settings = test_settings(migrated_database, redis_url)
    redis = redis_client(settings.redis_url, settings)
    wiring = bootstrap(settings, plugins=settings.plugins)
    db = Database(
        settings.database_url, settings=settings, dispatcher=Dispatcher(settings), redis=redis, wiring=wiring
    )
    # Audit details, messages and events are encrypted at rest: every write path needs the key.
    use_keys(db.engine, settings.resolved_phi_key())
    yield db
    truncate_all(db.engine)
    redis.flushdb()
    db.engine.dispose()


@pytest.fixture
def user(wired):
    """A clinic admin of a fresh clinic: (clinic id, user id)."""
    now = clock.now()
    with wired.unit_of_work() as session:
        clinic = auth.create_clinic(session=session, name="No App Dental", now=now, hooks=wired.wiring.auth)
        made = auth.create_user(
            session=session,
            clinic_id=clinic.id,
            actor=None,
            data={
                "email": "admin@noapp.org",
                "name": "Ada",
                "role": Role.CLINIC_ADMIN,
                "password": PASSWORD,
            },
            now=now,
        )
        return clinic.id, made.id


def _actor(clinic_id: int, user_id: int) -> Actor:
    return Actor(
        clinic_id=clinic_id,
        user_id=user_id,
        role=Role.CLINIC_ADMIN,
        permissions=ROLE_PERMISSIONS[Role.CLINIC_ADMIN],
    )


def test_staff_notices_and_an_email_are_queued_and_delivered_without_an_app(wired, user):
    assert not has_app_context()
    clinic_id, user_id = user
    now = clock.now()
    with wired.unit_of_work() as session:
        preferences.put_preferences(
            session=session,
            user_id=user_id,
            clinic_id=clinic_id,
            data={"channels": {"reminder": ["in_app", "email"]}},
            now=now,
        )
        notice = service.notify_staff(
            session=session, clinic_id=clinic_id, user_id=user_id, now=now,
            notice=service.StaffNotice(
                kind="reminder", title="Call back", body="Ann is waiting", link=None,
                dedupe_key="no-app:notice",
            ),
        )  # fmt: skip
    with wired.unit_of_work() as session:
        items, total = inbox.inbox(
            session=session, user_id=user_id, unread_only=True, paging=PageRequest(1, 10)
        )
        assert total == 1 and items[0].id == notice.id
        [email_job] = session.scalars(sa.select(ScheduledJob).where(ScheduledJob.kind == outgoing.DELIVER))
    # The delivery job claims, sends after its commit (the console backend) and records, all
    # through the Database it was given.
    assert run_job(db=wired, job_id=email_job.id, now=now) == "done"
    with wired.unit_of_work() as session:
        email = session.scalars(sa.select(Notification).where(Notification.channel == "email")).one()
        assert email.status == "sent" and email.to_address == "admin@noapp.org"
        assert attempts.recover_stuck_sends(session=session, now=now, settings=wired.settings) == 0


def test_the_digest_sweep_runs_with_the_settings_it_is_given(wired, user):
    wired.settings.digest_hour = 8
    eight_utc = datetime(2026, 6, 1, 8, 30, tzinfo=UTC)  # the user's (and clinic's) zone is UTC
    with wired.unit_of_work() as session:
        # Nothing to report: no digest; the sweep itself runs without an app.
        assert digest.send_due_digests(session=session, now=eight_utc, settings=wired.settings) == 0


def test_login_and_refresh_take_their_settings_as_arguments(wired, user):
    now = clock.now()
    with wired.unit_of_work() as session:
        tokens = auth.login(
            session=session, redis=wired.redis, settings=wired.settings,
            credentials=auth.Credentials("admin@noapp.org", PASSWORD), client_address="127.0.0.1", now=now,
        )  # fmt: skip
    again = auth.refresh(db=wired, settings=wired.settings, refresh_token=tokens["refresh_token"], now=now)
    headers = {"Authorization": f"Bearer {again['access_token']}"}
    assert auth.authenticate_request(db=wired, headers=headers, now=now).user_id == user[1]


def test_a_bulk_task_job_starts_with_the_chunk_size_it_is_given(wired, user):
    clinic_id, user_id = user
    with wired.unit_of_work() as session:
        job = bulk.start_bulk_tasks(
            session=session,
            actor=_actor(clinic_id, user_id),
            data={"title": "Post-event call", "type": "CALL", "due_in_minutes": 60, "filter": {}},
            chunk_size=2,
            now=clock.now(),
        )
        assert job.total == 0


def test_the_idempotency_purge_runs_on_the_database_it_is_given(wired, user):
    clinic_id, user_id = user
    old = clock.now() - timedelta(hours=25)
    with wired.unit_of_work() as session:
        session.add(
            IdempotencyKey(
                clinic_id=clinic_id, actor=f"user:{user_id}", key="old", method="POST", path="/api/leads",
                request_hash="x", created_at=old,
            )
        )  # fmt: skip
    assert idempotency.purge_expired_keys(db=wired, now=clock.now()) == 1


def test_protected_fields_use_the_keys_installed_for_the_engine_without_an_app(wired, user):
    clinic_id, user_id = user
    keys = wired.settings.resolved_phi_key()
    with wired.unit_of_work() as session:
        made = intake.create_lead(
            session=session,
            actor=_actor(clinic_id, user_id),
            new=intake.NewLead(data={"first_name": "Jane", "last_name": "Doe", "phone": "+12025550143",
                                     "patient_dob": date(2015, 3, 4), "notes": "asked about braces"}),
            now=clock.now(),
        )  # fmt: skip
        lead_id = made.lead.id
    with wired.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        assert (lead.patient_dob, lead.notes) == (date(2015, 3, 4), "asked about braces")
        raw_notes, dob_index = session.execute(
            sa.text("SELECT notes_encrypted, patient_dob_index FROM leads WHERE id = :id"), {"id": lead_id}
        ).one()
    assert phi.decrypt(raw_notes, keys=keys) == "asked about braces"  # stored as a token, not in clear
    assert dob_index == phi.blind_index(
        keys=keys, purpose="patient_dob", scope=str(clinic_id), value="2015-03-04"
    )
