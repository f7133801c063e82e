"""The live event stream end to end: the API (in this process), a real Celery worker (the embedded
one: the events' processing jobs), the real stream process (uvicorn, a child process) and a real
Redis between them; streams read as EventSource reads them."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa

from app.platform.phi_policy import ALL_FIELDS
from app.platform.stream.models import StreamEvent
from tests.leadkit import create_lead
from tests.stream.kit import StreamReader, only_assignee, stream_process
from tests.workers import wait_for

PATIENT = {"patient_first_name": "Mia", "patient_last_name": "Doe", "treatment_interest": ["INVISALIGN"]}


@pytest.fixture
def stream(app):
    with stream_process(app.config["SETTINGS"]) as base:
        yield base


def events_url(stream: str, **query) -> str:
    return str(httpx.URL(f"{stream}/api/me/events", params=query))


def about_lead(lead_id: int, type: str):
    def holds(event: dict) -> bool:
        data = event["data"]
        lead = data.get("lead") or {}
        task = data.get("task") or {}
        return event["event"] == type and lead_id in (lead.get("id"), task.get("lead_id"))

    return holds


def keys_at_any_depth(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for item in value.values() for k in keys_at_any_depth(item)}
    if isinstance(value, list):
        return {k for item in value for k in keys_at_any_depth(item)}
    return set()


def stream_ids(db, user_id: int) -> list[int]:
    with db.unit_of_work() as uow:
        return list(
            uow.scalars(sa.select(StreamEvent.id).where(StreamEvent.user_id == user_id).order_by("id"))
        )


def types_about(db, user_id: int, lead_id: int) -> set[str]:
    with db.unit_of_work() as uow:
        stmt = sa.select(StreamEvent.type).where(
            StreamEvent.user_id == user_id, StreamEvent.lead_id == lead_id
        )
        return set(uow.scalars(stmt))


def test_a_coordinators_stream_gets_lead_and_task_assigned_for_a_lead_the_front_desk_creates(
    app, client, tenant, celery_worker, stream
):
    coordinator = only_assignee(app, tenant, "treatment_coordinator")
    with (
        StreamReader(events_url(stream), tenant.headers("treatment_coordinator")) as mine,
        StreamReader(events_url(stream), tenant.headers("front_desk")) as front_desk,
    ):
        assert mine.status == 200 and mine.answer.headers["content-type"].startswith("text/event-stream")
        lead = create_lead(client, tenant, role="front_desk", **PATIENT)
        assigned = mine.wait_for(about_lead(lead["id"], "lead.assigned"))
        task = mine.wait_for(about_lead(lead["id"], "task.assigned"))
        other = create_lead(client, tenant, role="front_desk", first_name="Sam")
        mine.wait_for(about_lead(other["id"], "lead.assigned"))

    assert assigned["data"]["lead"]["first_name"] == "Jane"
    assert assigned["data"]["lead"]["patient_first_name"] == "Mia"  # a coordinator reads PHI
    assert task["data"]["task"]["assigned_to_id"] == coordinator and task["data"]["lead"]["id"] == lead["id"]
    assert all(event["id"] == str(event["data"]["id"]) for event in mine.events)  # every event has its id
    # What concerns the coordinator went to the coordinator only.
    assert not [e for e in front_desk.events if e["event"] in ("lead.assigned", "task.assigned")]


def test_a_front_desk_stream_never_carries_phi(app, client, tenant, celery_worker, stream):
    front_desk = tenant.users["front_desk"].id
    admin = tenant.headers("clinic_admin")
    with StreamReader(events_url(stream), tenant.headers("front_desk")) as theirs:
        lead = create_lead(client, tenant, role="clinic_admin", notes="allergic to latex", **PATIENT)
        answer = client.post(
            f"/api/leads/{lead['id']}/tasks",
            json={"title": "Call back", "type": "CALL", "due_in_minutes": 60, "assigned_to_id": front_desk,
                  "description": "asked about her retainer"},
            headers=admin,
        )  # fmt: skip
        assert answer.status_code == 201, answer.get_json()
        task_id = answer.get_json()["id"]
        theirs.wait_for(lambda e: e["event"] == "task.assigned" and e["data"]["task"]["id"] == task_id)

    carried = [e for e in theirs.events if about_lead(lead["id"], e["event"])(e)]
    assert carried
    for event in carried:
        assert not keys_at_any_depth(event["data"]) & ALL_FIELDS, event
        text = str(event["data"])
        assert "Mia" not in text and "INVISALIGN" not in text and "retainer" not in text
        assert "latex" not in text
    shown = carried[0]["data"]
    assert (
        shown["lead"]["first_name"] == "Jane" and shown["task"]["title"] == "Call back"
    )  # the rest is there
    assert shown["notification"]["title"] == "New task: Call back"


def test_a_stream_resumed_with_last_event_id_gets_exactly_what_it_missed_once(
    app, db, client, tenant, celery_worker, stream
):
    coordinator = only_assignee(app, tenant, "treatment_coordinator")
    headers = tenant.headers("treatment_coordinator")
    with StreamReader(events_url(stream), headers) as first:
        seen = create_lead(client, tenant, first_name="Seen")
        first.wait_for(about_lead(seen["id"], "task.assigned"))
        first.wait_for(about_lead(seen["id"], "lead.assigned"))
        last_seen = first.events[-1]["id"]
    # Dropped: two leads come and are assigned while nobody listens.
    for name in ("Missed1", "Missed2"):
        missed = create_lead(client, tenant, first_name=name)
        wait_for(lambda m=missed: {"lead.assigned", "task.assigned"} <= types_about(db, coordinator, m["id"]))
    missed_ids = [i for i in stream_ids(db, coordinator) if i > int(last_seen)]

    with StreamReader(events_url(stream), {**headers, "Last-Event-ID": last_seen}) as resumed:
        after = create_lead(client, tenant, first_name="After")
        resumed.wait_for(about_lead(after["id"], "lead.assigned"))
        resumed.wait_for(about_lead(after["id"], "task.assigned"))
        # Everything the feed holds after the last event seen arrives (a rule's later notice too).
        expected = wait_for(
            lambda: (
                (ids := [i for i in stream_ids(db, coordinator) if i > int(last_seen)])
                and sorted({int(e["id"]) for e in resumed.events}) == ids
                and ids
            )
        )
    received = [int(e["id"]) for e in resumed.events]

    assert len(received) == len(set(received))  # each once
    assert sorted(received) == expected  # exactly what followed the last event seen: nothing before it
    assert len(missed_ids) >= 4  # lead.assigned and task.assigned of each missed lead, at least
    assert received[: len(missed_ids)] == missed_ids  # the missed ones first, in order, then the new


def test_a_last_event_id_past_the_window_gets_a_reset(app, db, client, tenant, celery_worker, stream):
    coordinator = only_assignee(app, tenant, "treatment_coordinator")
    lead = create_lead(client, tenant)
    wait_for(lambda: len(stream_ids(db, coordinator)) >= 2)
    newest = stream_ids(db, coordinator)[-1]
    with db.unit_of_work() as uow:  # the first event aged out of the window and was pruned
        uow.execute(sa.delete(StreamEvent).where(StreamEvent.id == stream_ids(db, coordinator)[0]))
    pruned = {"Last-Event-ID": "1", **tenant.headers("treatment_coordinator")}
    with StreamReader(events_url(stream), pruned) as resumed:
        reset = resumed.wait_for(lambda e: e["event"] == "reset")
    assert reset["id"] == str(newest)  # where to resume from after reloading
    assert not [e for e in resumed.events if about_lead(lead["id"], "lead.assigned")(e)]


def test_a_stream_token_opens_a_stream_then_expires_and_is_refused(app, client, tenant, monkeypatch, stream):
    monkeypatch.setattr(app.config["SETTINGS"], "stream_token_seconds", 2)
    answer = client.post("/api/me/stream-token", headers=tenant.headers("treatment_coordinator"))
    assert answer.status_code == 200
    issued = answer.get_json()
    assert issued["expires_in"] == 2 and issued["stream_url"].endswith("/api/me/events")
    with StreamReader(events_url(stream, token=issued["token"])) as opened:
        assert opened.status == 200
    unused = client.post("/api/me/stream-token", headers=tenant.headers("treatment_coordinator")).get_json()

    time.sleep(unused["expires_in"] + 1)  # (opening it to see whether it expired would spend it)
    refused = opening(events_url(stream, token=unused["token"]))
    assert refused[0] == 401
    assert refused[1]["code"] == "unauthorized" and "expired" in refused[1]["message"]
    # It opens a stream and nothing else: the API refuses it as a bearer token.
    api = client.get("/api/me", headers={"Authorization": f"Bearer {issued['token']}"})
    assert api.status_code == 401


def opening(url: str, headers: dict | None = None) -> tuple[int, dict | None]:
    """The status a stream opens with, and a refusal's JSON body (an open stream is closed at once)."""
    with httpx.stream("GET", url, headers=headers, timeout=10) as answer:
        return answer.status_code, (answer.read() and answer.json()) if answer.status_code != 200 else None


def test_a_stream_needs_a_user(app, client, tenant, stream):
    assert opening(events_url(stream))[0] == 401
    # An access token is not a stream token (a URL must not carry the long-lived one).
    access = tenant.token("treatment_coordinator")
    assert opening(events_url(stream, token=access))[0] == 401
    key = client.post(
        "/api/api-keys",
        json={"name": "crm", "permissions": ["lead:read"]},
        headers=tenant.headers("clinic_admin"),
    ).get_json()["key"]
    assert client.post("/api/me/stream-token", headers={"X-API-Key": key}).status_code == 403
    assert client.post("/api/me/stream-token").status_code == 401
