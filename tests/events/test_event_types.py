"""Events as types (issue 61 item 2): every event the engine writes is a type of its owning domain,
stored with its name and version, read back as that type; the handler map, the rule triggers and
the webhook subscriptions name only such types; and the events' page in the docs is the one the
types write, so the documented payloads are the stored ones."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.devtools.events_doc import DOC_PATH
from app.domains.automation.language.triggers import TRIGGERS
from app.domains.webhooks.schemas import EVENT_TYPES as WEBHOOK_EVENTS
from app.handlers import EVENT_HANDLERS, EVENTS, PROCESSED_LATER, RESCORED_AFTER
from app.platform.events.models import DomainEvent
from tests.leadkit import create_lead

ROOT = Path(__file__).resolve().parents[2]


def test_the_events_page_is_the_one_the_types_write():
    committed = (ROOT / DOC_PATH).read_text()
    assert committed == EVENTS.document(), "docs/architecture/events.md is stale: run `make events-doc`"
    # The three fields the hand-written list of lead.created had missed are on the page now.
    created = committed.split("## `lead.created`")[1].split("## ")[0]
    for field in ("has_phone", "has_email", "possible_duplicate_ids"):
        assert f"| `{field}` |" in created


def test_the_handler_map_the_triggers_and_the_webhooks_name_only_the_engines_event_types():
    known = set(EVENTS.types.values())
    assert set(EVENT_HANDLERS) <= known
    assert {*PROCESSED_LATER, *RESCORED_AFTER} <= known
    assert set(TRIGGERS) <= set(EVENTS.types) and set(WEBHOOK_EVENTS) <= set(EVENTS.types)


def _stored(db, lead_id: int) -> list[DomainEvent]:
    with db.unit_of_work() as session:
        rows = session.scalars(
            sa.select(DomainEvent)
            .where(DomainEvent.subject_type == "lead", DomainEvent.subject_id == lead_id)
            .order_by(DomainEvent.id)
        )
        return list(rows)


def test_each_event_a_leads_story_writes_is_stored_with_its_types_name_version_and_fields(client, db, tenant):
    lead = create_lead(client, tenant, first_name="Ada", phone="+14155552671")
    lead_url, headers = f"/api/leads/{lead['id']}", tenant.headers("clinic_admin")
    call = {"type": "PHONE_CALL", "direction": "OUTBOUND", "outcome": "no_answer"}
    assert client.post(f"{lead_url}/activities", json=call, headers=headers).status_code == 201
    assert client.put(lead_url, json={"priority": "high"}, headers=headers).status_code == 200
    assert client.post(f"{lead_url}/lost", json={"reason": "OTHER"}, headers=headers).status_code == 200
    rows = _stored(db, lead["id"])
    names = [row.type for row in rows]
    for name in (
        "lead.created",
        "lead.assigned",
        "activity.logged",
        "lead.updated",
        "lead.stage_changed",
        "lead.lost",
    ):
        assert name in names
    for row in rows:
        event = EVENTS.load(row.type, row.payload)
        assert row.version == type(event).VERSION == 1
        assert event.payload() == row.payload, f"{row.type}: stored fields differ from its type's"
    updated = next(row for row in rows if row.type == "lead.updated")
    assert EVENTS.load(updated.type, updated.payload).priority == "high"


def test_a_row_written_before_the_types_loads_as_its_type():
    # As the engine stored them before events were types: nulls where a type now leaves a detail
    # out, and the envelope's `automation` flag among the fields.
    old_update = {
        "lead_id": 4,
        "changed": ["priority"],
        "priority": "HIGH",
        "previous_priority": None,
        "by": "user:1",
    }
    loaded = EVENTS.load("lead.updated", {**old_update, "automation": False})
    assert (loaded.lead_id, loaded.changed, loaded.previous_priority) == (4, ["priority"], None)
    old_move = {"lead_id": 4, "consultation_id": None, "by_stage_move": True}
    assert EVENTS.load("consultation.attended", old_move).by_stage_move is True
    resumed = EVENTS.load("clinic.outreach_resumed", {"from": "2026-01-01T00:00:00+00:00", "until": None})
    assert resumed.payload() == {"from": "2026-01-01T00:00:00+00:00", "until": None}


def test_a_detail_only_some_events_carry_is_absent_rather_than_null():
    quiet = EVENTS.types["lead.stale"](
        lead_id=1, stage="contacted", kind="quiet", last_activity_at="x", quiet_days=7
    )
    assert quiet.payload() == {
        "lead_id": 1,
        "stage": "contacted",
        "kind": "quiet",
        "last_activity_at": "x",
        "quiet_days": 7,
    }
