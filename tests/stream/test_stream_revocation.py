"""An open stream trusts its user no longer than the API does (issue 58 item 2): it reads the user
again at each heartbeat and before each batch, shapes events with the role they have now, closes at
once when told the user was demoted, disabled or given a new password, ends after its longest life,
and is opened once per stream token. A Last-Event-ID that is not an event id is a 400. The real
stream process (uvicorn, a child process), a real Celery worker and Redis between them."""

from __future__ import annotations

import time

import httpx
import pytest

from app.devtools.local_redis import free_port
from app.domains.auth.models import User
from tests.leadkit import create_lead, set_user
from tests.stream.kit import StreamReader, stream_process
from tests.stream.test_event_stream import PATIENT, events_url, opening

HEARTBEAT = 2.0  # seconds, for the streams that must notice a change by their heartbeat alone
SLACK = 3.0  # a loaded host's thread pool and database read, on top of one heartbeat


@pytest.fixture
def quick_heartbeat(app):
    with stream_process(app.config["SETTINGS"], FOLLOWUP_STREAM_HEARTBEAT_SECONDS=str(HEARTBEAT)) as base:
        yield base


@pytest.fixture
def slow_heartbeat(app):
    """Heartbeats far apart: what closes a stream within seconds here is the published notice."""
    with stream_process(app.config["SETTINGS"], FOLLOWUP_STREAM_HEARTBEAT_SECONDS="300") as base:
        yield base


def task_for(client, tenant, lead_id: int, user_id: int, title: str) -> int:
    answer = client.post(
        f"/api/leads/{lead_id}/tasks",
        json={"title": title, "type": "CALL", "due_in_minutes": 60, "assigned_to_id": user_id,
              "description": "asked about her retainer"},
        headers=tenant.headers("clinic_admin"),
    )  # fmt: skip
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def task_event(reader: StreamReader, task_id: int) -> dict:
    return reader.wait_for(lambda e: e["event"] == "task.assigned" and e["data"]["task"]["id"] == task_id)


def bump_silently(app, user_id: int, **fields) -> None:
    """Change a user as the API would (a new token version) but tell no stream: only the stream's
    own heartbeat can notice."""
    with app.extensions["followup.db"].unit_of_work() as session:
        version = session.get(User, user_id).token_version
    set_user(app, user_id, token_version=version + 1, **fields)


def test_events_are_shaped_by_the_role_the_user_has_now(app, client, tenant, celery_worker, quick_heartbeat):
    coordinator = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant, role="clinic_admin", **PATIENT)
    with StreamReader(events_url(quick_heartbeat), tenant.headers("treatment_coordinator")) as theirs:
        before = task_event(theirs, task_for(client, tenant, lead["id"], coordinator, "First call"))
        set_user(app, coordinator, role="front_desk")  # the row only: the stream's token stays valid
        after = task_event(theirs, task_for(client, tenant, lead["id"], coordinator, "Second call"))

    assert before["data"]["task"]["description"] == "asked about her retainer"
    assert "description" not in after["data"]["task"] and "Mia" not in str(after["data"])
    assert after["data"]["task"]["title"] == "Second call"  # the rest is there


def test_a_demoted_coordinators_stream_stops_within_one_heartbeat(
    app, client, tenant, celery_worker, quick_heartbeat
):
    coordinator = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant, role="clinic_admin", **PATIENT)
    with StreamReader(events_url(quick_heartbeat), tenant.headers("treatment_coordinator")) as theirs:
        carried = task_event(theirs, task_for(client, tenant, lead["id"], coordinator, "First call"))
        assert "description" in carried["data"]["task"]  # a coordinator reads PHI
        bump_silently(app, coordinator, role="front_desk")
        demoted_at = time.monotonic()
        assert theirs.ended_within(HEARTBEAT + SLACK), "the stream outlived the demotion"
        ended_after = time.monotonic() - demoted_at
        task_for(client, tenant, lead["id"], coordinator, "After the demotion")
        time.sleep(1)
    assert ended_after <= HEARTBEAT + SLACK
    titles = [e["data"]["task"]["title"] for e in theirs.events if e["event"] == "task.assigned"]
    assert "First call" in titles and "After the demotion" not in titles


@pytest.mark.parametrize(
    "change",
    [{"role": "front_desk"}, {"active": False}, {"password": "a-brand-new-Passphrase-2027"}],
    ids=["demoted", "disabled", "new password"],
)
def test_a_users_open_stream_closes_at_once_when_they_are_changed(
    client, tenant, celery_worker, slow_heartbeat, change
):
    coordinator = tenant.users["treatment_coordinator"].id
    with StreamReader(events_url(slow_heartbeat), tenant.headers("treatment_coordinator")) as theirs:
        assert theirs.status == 200
        assert not theirs.ended_within(1)  # open, and quiet
        answer = client.put(f"/api/users/{coordinator}", json=change, headers=tenant.headers())
        assert answer.status_code == 200, answer.get_json()
        assert theirs.ended_within(10), "the stream stayed open after the change"


def test_a_stream_ends_after_its_longest_life_and_resumes_where_it_ended(app, client, tenant, celery_worker):
    settings = app.config["SETTINGS"]
    coordinator = tenant.users["treatment_coordinator"].id
    lead = create_lead(client, tenant, role="clinic_admin")
    env = {"FOLLOWUP_STREAM_MAX_SECONDS": "3", "FOLLOWUP_STREAM_HEARTBEAT_SECONDS": "1"}
    with stream_process(settings, **env) as base:
        with StreamReader(events_url(base), tenant.headers("treatment_coordinator")) as first:
            seen = task_event(first, task_for(client, tenant, lead["id"], coordinator, "Seen"))
            assert first.ended_within(10)
        missed = task_for(client, tenant, lead["id"], coordinator, "Missed")
        resume = {**tenant.headers("treatment_coordinator"), "Last-Event-ID": seen["id"]}
        with StreamReader(events_url(base), resume) as second:
            assert task_event(second, missed)["data"]["task"]["title"] == "Missed"


def test_a_stream_token_opens_one_stream(app, client, tenant, stream_default):
    issued = client.post("/api/me/stream-token", headers=tenant.headers("treatment_coordinator")).get_json()
    with StreamReader(events_url(stream_default, token=issued["token"])) as opened:
        assert opened.status == 200
        status, body = opening(events_url(stream_default, token=issued["token"]))  # a copy, while it lives
    assert status == 401 and body["code"] == "unauthorized" and "already used" in body["message"]
    assert opening(events_url(stream_default, token=issued["token"]))[0] == 401  # and after it closed


@pytest.fixture
def stream_default(app):
    with stream_process(app.config["SETTINGS"]) as base:
        yield base


NOT_EVENT_IDS = ("²", "-1", "1.5", "abc", "99999999999999999999", "2147483648")


def test_a_last_event_id_that_is_no_event_id_is_a_400_naming_it(client, tenant, stream_default):
    for value in NOT_EVENT_IDS:
        # As a client's bytes: `²` is one byte in Latin-1, the header's encoding (the stream reads it so).
        headers = {**tenant.headers("treatment_coordinator"), "Last-Event-ID": value.encode("latin-1")}
        status, body = opening(events_url(stream_default), headers)
        assert status == 400 and body["code"] == "bad_request", (value, body)
        assert body["errors"] == {"headers": {"Last-Event-ID": ["not an event id"]}}
        # The same in the query (a browser opening a new EventSource with a fresh token).
        token = client.post(
            "/api/me/stream-token", headers=tenant.headers("treatment_coordinator")
        ).get_json()
        status, body = opening(events_url(stream_default, token=token["token"], last_event_id=value))
        assert status == 400 and body["errors"] == {"query": {"last_event_id": ["not an event id"]}}, value


def test_the_largest_event_id_is_one(tenant, stream_default):
    """The range's end is taken (a client far ahead of the table, e.g. after a restore, resets)."""
    headers = {**tenant.headers("treatment_coordinator"), "Last-Event-ID": "2147483647"}
    with StreamReader(events_url(stream_default), headers) as resumed:
        assert resumed.status == 200
        assert resumed.wait_for(lambda e: e["event"] == "reset")


def test_the_stream_process_is_ready_only_with_redis_and_the_database(app, stream_default):
    ready = httpx.get(f"{stream_default}/readyz", timeout=10)
    assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok", "database": "ok"}
    nowhere = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with stream_process(app.config["SETTINGS"], subscribed=False, REDIS_URL=nowhere) as base:
        answer = httpx.get(f"{base}/readyz", timeout=10)
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200  # alive, not ready
    assert answer.status_code == 503 and answer.json()["status"] == "unavailable"
    assert (
        answer.json()["checks"]["redis"].startswith("error") and answer.json()["checks"]["database"] == "ok"
    )
