"""A worker killed with kill -9 in the middle of a send: the message is never sent a second time."""

from __future__ import annotations

import os
import signal
import time

import pytest

from app.domains.outbound.worker import attempts
from app.platform import clock
from tests.outbound.fakes import sms_provider, smtp_server
from tests.outbound.kit import (
    FAST_DELIVERY,
    as_env,
    queue_emails,
    queue_sms,
    rows,
    sms_settings,
    smtp_settings,
    use,
)
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.workers import subprocess_worker, wait_for

pytestmark = pytest.mark.reliability


def recover(app, db):
    with app.app_context(), db.unit_of_work() as session:
        return attempts.recover_stuck_sends(session=session, now=clock.now(), settings=db.settings)


@pytest.fixture
def stuck_soon(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    use(monkeypatch, settings, notification_stuck_seconds=1.0, notification_send_timeout=0.2)
    return settings


def test_email_worker_killed_mid_send_is_not_resent_but_held_as_unknown(app, db, tenant, stuck_soon):
    with smtp_server() as (server, port):
        server.stall_after_data = 30  # the server has the message; its answer never comes in time
        env = WORKER_ENV | as_env(FAST_DELIVERY | smtp_settings(port))
        ids = queue_emails(app, tenant, 1)
        with subprocess_worker(stuck_soon, name="doomed", **env) as doomed:
            wait_for(lambda: server.accepted, timeout=60)
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
        assert rows(db, ids)[0].status == "sending"
        server.stall_after_data = 0
        with subprocess_worker(stuck_soon, name="rescuer", **env), sweeping(app):
            time.sleep(1.5)
            assert recover(app, db) == 1
            time.sleep(2)
    (row,) = rows(db, ids)
    assert row.status == "unknown" and row.last_error.startswith(attempts.OUTCOME_UNKNOWN_STOPPED)
    assert server.accepted == {"m:0": 1}


def test_sms_worker_killed_mid_send_becomes_unknown_and_is_never_sent_again(app, db, tenant, stuck_soon):
    with sms_provider() as (provider, url):
        provider.stall = 30
        env = WORKER_ENV | as_env(FAST_DELIVERY | sms_settings(url))
        ids = queue_sms(app, tenant, 1)
        with subprocess_worker(stuck_soon, name="doomed-sms", **env) as doomed:
            wait_for(lambda: provider.deliveries(), timeout=60)
            os.killpg(doomed.pid, signal.SIGKILL)
            doomed.wait()
        provider.stall = 0
        with subprocess_worker(stuck_soon, name="rescuer-sms", **env), sweeping(app):
            time.sleep(1.5)
            assert recover(app, db) == 1
            time.sleep(2)  # a blind re-send would land now
    (row,) = rows(db, ids)
    assert row.status == "unknown" and "may already have reached the lead" in row.last_error
    assert provider.deliveries() == 1 and provider.requests == 1  # Twilio has no dedupe: never re-sent
