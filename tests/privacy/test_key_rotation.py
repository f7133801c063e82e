"""PHI key rotation (issue 34 item 8): `followup phi rotate-key` re-encrypts every protected value
under the new key and rebuilds the DOB's blind index, in resumable batches, while captures run;
meanwhile and after, every old lead reads back and is still matched as a duplicate by name and DOB."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from app import create_app
from app.domains.leads.models import Lead
from app.domains.privacy import rotation
from app.domains.privacy.models import RotationProgress
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job
from tests.conftest import TEST_PHI_KEY, test_settings

ROOT = Path(__file__).resolve().parents[2]
NEW_KEY = Fernet.generate_key().decode()
OLD_LEADS = 12


def _app(migrated_database, redis_url, keys: str):
    return create_app(test_settings(migrated_database, redis_url, phi_encryption_key=keys))


def _capture(client, tenant, n: int, **fields):
    body = {"first_name": f"Old{n}", "last_name": "Family", "patient_first_name": f"Kid{n}",
            "patient_last_name": "Family", "patient_relationship": "CHILD",
            "patient_dob": f"2010-01-{n + 1:02d}", "notes": f"concern {n}", **fields}  # fmt: skip
    return client.post("/api/leads", json=body, headers=tenant.headers("treatment_coordinator"))


@pytest.fixture
def apps(migrated_database, redis_url):
    made = {
        "both": _app(migrated_database, redis_url, f"{NEW_KEY},{TEST_PHI_KEY}"),
        "new": _app(migrated_database, redis_url, NEW_KEY),
    }
    yield made
    for flask_app in made.values():
        flask_app.extensions["followup.db"].engine.dispose()


def _old_leads(client, tenant) -> dict[int, int]:
    ids = {}
    for n in range(OLD_LEADS):
        resp = _capture(client, tenant, n)
        assert resp.status_code == 201, resp.get_json()
        ids[n] = resp.get_json()["id"]
    return ids


def _duplicate_of(client, tenant, n: int) -> list[dict]:
    """A new capture of old lead n's child (another parent's name, the same child and DOB)."""
    resp = _capture(client, tenant, n, first_name="Other", last_name="Parent", phone=None)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["possible_duplicates"]


def test_rotation_under_captures_keeps_every_lead_readable_and_matched(client, tenant, apps):
    old = _old_leads(client, tenant)
    both, new = apps["both"], apps["new"]
    both_client = both.test_client()
    # New key first, old after: an old lead's index is under the old key and still matches.
    assert [d["lead_id"] for d in _duplicate_of(both_client, tenant, 0)] == [old[0]]

    failures, captured, stop = [], [], threading.Event()

    def capture_while_rotating():
        n = 100
        while not stop.is_set():
            resp = _capture(both.test_client(), tenant, n % 20, first_name=f"Live{n}")
            (captured if resp.status_code == 201 else failures).append(resp.status_code)
            n += 1

    worker = threading.Thread(target=capture_while_rotating)
    worker.start()
    try:
        totals = rotation.rotate_all(
            db=both.extensions["followup.db"], keys=f"{NEW_KEY},{TEST_PHI_KEY}", now=clock.now, size=3
        )
    finally:
        stop.set()
        worker.join(timeout=60)
    assert failures == [] and len(captured) > 0
    assert totals["leads"] >= OLD_LEADS

    # Only the new key from now on: every old lead reads back, and is matched by name and DOB.
    new_client = new.test_client()
    for n, lead_id in old.items():
        answer = new_client.get(f"/api/leads/{lead_id}", headers=tenant.headers()).get_json()
        assert (answer["patient_dob"], answer["notes"]) == (f"2010-01-{n + 1:02d}", f"concern {n}")
    for n in (1, OLD_LEADS - 1):
        assert old[n] in [d["lead_id"] for d in _duplicate_of(new_client, tenant, n)]
    with new.extensions["followup.db"].unit_of_work() as session:
        notes = session.scalars(sa.select(Lead.notes)).all()  # every row decrypts with the new key alone
        assert len(notes) >= OLD_LEADS + len(captured)


def test_a_stopped_rotation_continues_where_it_was(client, tenant, apps):
    _old_leads(client, tenant)
    db = apps["both"].extensions["followup.db"]
    keys = f"{NEW_KEY},{TEST_PHI_KEY}"
    seen = []

    def stop_after_the_first_leads_batch(table, changed):
        seen.append((table, changed))
        if table == "leads":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rotation.rotate_all(db=db, keys=keys, now=clock.now, size=4, report=stop_after_the_first_leads_batch)
    with db.unit_of_work() as session:
        progress = session.get(RotationProgress, "leads")
        assert progress.after == [progress.after[0]] and not progress.done
    totals = rotation.rotate_all(db=db, keys=keys, now=clock.now, size=4)
    # The rerun rewrote only the rows after the recorded position (the first batch's 4 leads, each
    # with a DOB and notes, were done).
    assert totals["leads"] == (OLD_LEADS - 4) * 2
    with db.unit_of_work() as session:
        assert all(p.done for p in session.scalars(sa.select(RotationProgress)))


def test_the_cli_rotates_and_reports_done(client, tenant, migrated_database):
    _old_leads(client, tenant)
    env = {"PHI_ENCRYPTION_KEY": f"{NEW_KEY},{TEST_PHI_KEY}", "DATABASE_URL": migrated_database}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "phi", "rotate-key", "--batch", "5"],
        cwd=ROOT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "leads:" in done.stdout


def test_a_pending_import_chunk_survives_the_old_keys_removal(client, tenant, apps):
    """Issue 42: an import's rows wait encrypted in its chunk job's payload; rotation rewrites them
    too, so the chunk still runs once the old key is gone."""
    rows = [
        {"external_id": "rot-1", "first_name": "Ida", "last_name": "Rotor", "phone": "(415) 555-0161"},
        {"external_id": "rot-2", "first_name": "Ned", "last_name": "Rotor", "email": "ned@example.com"},
    ]
    started = client.post("/api/leads/import", json=rows, headers=tenant.headers("treatment_coordinator"))
    assert started.status_code == 202, started.get_json()  # no worker here: the chunk waits
    both, new = apps["both"], apps["new"]

    rotation.rotate_all(
        db=both.extensions["followup.db"], keys=f"{NEW_KEY},{TEST_PHI_KEY}", now=clock.now, size=3
    )

    new_db = new.extensions["followup.db"]
    with new_db.unit_of_work() as session:
        [chunk] = session.scalars(
            sa.select(ScheduledJob).where(ScheduledJob.kind == "leads.import_chunk")
        ).all()
    assert run_job(db=new_db, job_id=chunk.id, now=clock.now()) == "done"  # only the new key from here
    job = new.test_client().get(f"/api/bulk-jobs/{started.get_json()['id']}", headers=tenant.headers())
    assert job.get_json()["outcomes"] == {"created": 2, "duplicate": 0, "invalid": 0}
    with new_db.unit_of_work() as session:
        names = set(session.scalars(sa.select(Lead.first_name).where(Lead.last_name == "Rotor")))
    assert names == {"Ida", "Ned"}


def test_rotation_rebuilds_a_messages_recipient_index_so_the_filter_still_finds_it(app, tenant, apps):
    from app.domains.outbound import service as notifications
    from app.domains.outbound.models import Notification
    from tests.outbound.kit import queue_emails

    [email] = queue_emails(app, tenant, 1, to=lambda i: "old.patient@example.com")  # under the old key
    rotation.rotate_all(
        db=apps["both"].extensions["followup.db"], keys=f"{NEW_KEY},{TEST_PHI_KEY}", now=clock.now, size=3
    )
    new = apps["new"]  # the old key removed
    with new.app_context(), new.extensions["followup.db"].unit_of_work() as session:
        indexes = notifications.recipient_indexes(
            session=session, clinic_id=tenant.id, text="Old.Patient@example.com"
        )
        found = session.scalars(sa.select(Notification.id).where(Notification.to_address_index.in_(indexes)))
        assert list(found) == [email]
