"""What a rule's conditions read for one event: the lead's fields, the event's, and computed fields
(attempts in a row, days in stage, a reply's sentiment, ...) resolved only when a condition asks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.automation import attempts, rules
from app.domains.intelligence import service as intelligence_service
from app.domains.leads.models import Lead, LeadSource
from app.domains.pipeline.models import PipelineStage
from app.platform.db import UnitOfWork


def failed_attempts_in_a_row(session: UnitOfWork, lead_id: int, as_of: datetime) -> int:
    """Failed attempts since the lead's last contact, as the cadence counts them (automation/attempts.py)."""
    return attempts.failed_in_a_row(session, lead_id, as_of)


def _source_category(session: UnitOfWork, source_id: int) -> str | None:
    """A source's category, read when a condition asks (the events processing passes it in,
    read with the lead: automation/processing.py)."""
    return session.scalar(sa.select(LeadSource.category).where(LeadSource.id == source_id))


def _changed_fields(event_type: str, payload: dict) -> set[str]:
    if event_type == "lead.created":
        return {f"lead.{name}" for name in rules.LEAD_FIELDS}
    if event_type == "lead.stage_changed":
        return {"lead.pipeline_stage", "lead.status", "event.new_stage"}
    if event_type in ("lead.converted", "lead.lost"):
        return {"lead.pipeline_stage", "lead.status"}
    if event_type == "lead.assigned":
        return {"lead.assigned_to_id"}
    if event_type == "lead.updated":
        return {f"lead.{name}" for name in payload.get("changed") or []}
    if event_type == "lead.score_changed":
        return {"lead.score", "event.score"}
    return set()


def build_context(
    *,
    session: UnitOfWork,
    lead: Lead,
    event_type: str,
    payload: dict,
    at: datetime,
    overrides: dict | None = None,
) -> rules.Context:
    """What conditions read: the lead's fields, the event's, and computed ones (resolved on demand)."""
    values = {f"lead.{name}": getattr(lead, name, None) for name in rules.LEAD_FIELDS if hasattr(lead, name)}
    values.update({f"event.{name}": value for name, value in payload.items()})
    values["event.type"] = event_type
    if "type" in payload:
        values["event.activity_type"] = payload["type"]
    values.update(overrides or {})
    computed = {
        "lead.source_category": lambda: _source_category(session, lead.source_id),
        "failed_attempts_in_a_row": lambda: failed_attempts_in_a_row(session, lead.id, at),
        # An inbound email or SMS's sentiment (labelled on first read, whichever consumer runs first).
        "reply_sentiment": lambda: intelligence_service.reply_sentiment(
            session=session, activity_id=payload.get("activity_id"), now=at
        ),
        "days_in_stage": lambda: (at - lead.stage_entered_at).days if lead.stage_entered_at else None,
        "hours_since_created": lambda: (
            (at - lead.created_at).total_seconds() / 3600 if lead.created_at else None
        ),
        # The stage the event entered, not the lead's stage now (it may have moved on since).
        "stage_task_template_id": lambda: session.scalar(
            sa.select(PipelineStage.task_template_id).where(
                PipelineStage.clinic_id == lead.clinic_id,
                PipelineStage.slug == (payload.get("new_stage") or lead.pipeline_stage),
            )
        ),
    }
    return rules.Context(values, computed, changed=_changed_fields(event_type, payload))
