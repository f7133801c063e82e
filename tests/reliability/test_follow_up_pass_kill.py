"""The follow-up pass with its worker killed -9 mid-pass (issue 74 item 7): the pass rolls back with
the worker, the ledger hands it to the next one, and each qualifying silent lead gets exactly one
message, the summary written once."""

import os
import signal

import pytest

from app.domains.automation.steps import SEQUENCE_STEP_KIND, STEP_KIND
from app.domains.sequences.follow_up_pass import PASS_KIND
from app.platform import clock
from tests.automation.outreachkit import messages_to, open_jobs
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.sequences.passkit import beat_tick, clinic_at_a_window, enrolled_leads, paced_sequence, passes
from tests.workers import subprocess_worker, wait_for, wait_until_consuming

pytestmark = pytest.mark.reliability

SLOW_ENV = {**WORKER_ENV, "FOLLOWUP_PLUGINS": "tests.reliability.handlers,tests.reliability.slow_pass"}
LEADS = {
    "ana": ({}, None),
    "ben": ({}, None),
    "cleo": ({}, None),
    "dev": ({"contacted_hours_ago": 2}, "heard from in the last 24 hours"),
}


def _settled(db) -> bool:
    return not any(open_jobs(db, kind) for kind in (PASS_KIND, STEP_KIND, SEQUENCE_STEP_KIND))


def test_a_pass_killed_mid_way_sends_each_qualifying_lead_one_message_and_one_summary(
    app, client, db, tenant, fast, tmp_path
):
    clinic_at_a_window(client, tenant)
    sequence = paced_sequence(client, tenant)
    leads = enrolled_leads(client, db, tenant, sequence, clock.now(), cases=LEADS)
    assert beat_tick(app, clock.now()) == 1
    mark = tmp_path / "released"
    settings = app.config["SETTINGS"]

    with (
        subprocess_worker(
            settings,
            name="passdoomed",
            FOLLOWUP_TEST_PASS_MARK=str(mark),
            FOLLOWUP_TEST_PASS_SLEEP="30",
            **SLOW_ENV,
        ) as doomed,
        sweeping(app),
    ):
        wait_until_consuming(app, "passdoomed")
        # The first lead's step released in the pass's transaction, not committed: then the kill.
        wait_for(lambda: mark.exists() and mark.read_text().split(), timeout=60, interval=0.05)
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait(timeout=10)
    assert passes(client, tenant) == []  # rolled back with the worker
    assert all(messages_to(db, lead_id) == [] for lead_id in leads.values())

    with subprocess_worker(settings, name="passrescuer", **WORKER_ENV), sweeping(app):
        wait_until_consuming(app, "passrescuer")
        wait_for(lambda: passes(client, tenant) and _settled(db), timeout=120, interval=0.2)

    [summary] = passes(client, tenant)
    assert (summary["selected"], summary["sent"]) == (4, 3)
    assert summary["skipped"] == [{"lead_id": leads["dev"], "reason": "heard from in the last 24 hours"}]
    for name, (_, skipped) in LEADS.items():
        assert len(messages_to(db, leads[name])) == (0 if skipped else 1), name
