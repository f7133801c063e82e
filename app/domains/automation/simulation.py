"""Trying a rule on a sample lead and replaying it over the clinic's recent events: what it would
do, with no side effects (reads only)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic, User
from app.domains.automation import rules
from app.domains.automation.language.context import build_context
from app.domains.automation.models import AutomationRule
from app.domains.automation.processing import plan_actions
from app.domains.automation.service import get_rule
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound
from app.platform.events.models import DomainEvent
from app.platform.roles import Actor

MATCHES_EXPLAINED = 50  # leads a replay names with their why (the counts cover them all)


def try_rule(*, session: UnitOfWork, actor: Actor, rule_id: int, sample: dict, now: datetime) -> dict:
    """Evaluate a rule against a sample lead and event: every condition with the value it saw, and
    the actions with their computed times. Reads only."""
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id)
    return try_definition(session=session, actor=actor, rule=rule, sample=sample, now=now)


def draft_rule(*, actor: Actor, definition: dict, rule_id: int | None = None) -> AutomationRule:
    """A rule not saved (a builder's draft, checked by service.validate_rule first), to try or replay
    before saving it: never added to the session, so nothing of it is written."""
    return AutomationRule(
        id=rule_id or 0,
        clinic_id=actor.clinic_id,
        name=definition.get("name") or "draft",
        trigger=definition["trigger"],
        conditions=definition.get("conditions") or [],
        actions=definition.get("actions") or [],
        stop_processing=bool(definition.get("stop_processing")),
        version=0,
    )


def try_definition(
    *, session: UnitOfWork, actor: Actor, rule: AutomationRule, sample: dict, now: datetime
) -> dict:
    """`try_rule` for a rule in hand: a saved one, or a draft (`draft_rule`)."""
    clinic = session.get(Clinic, actor.clinic_id)
    lead = _sample_lead(session, actor.clinic_id, sample)
    at = sample.get("occurred_at") or now
    event = sample.get("event") or {}
    overrides = {
        **{f"lead.{k}": v for k, v in (sample.get("lead") or {}).items()},
        **(sample.get("computed") or {}),
    }
    context = build_context(
        session=session, lead=lead, event_type=rule.trigger, payload=event, at=at, overrides=overrides
    )
    evaluation = rules.evaluate(rule.conditions, context, exhaustive=True)
    return {
        "rule_id": rule.id,
        "version": rule.version,
        "trigger": rule.trigger,
        "matched": evaluation.matched,
        "conditions": evaluation.conditions,
        "actions": [
            {"index": index, "type": action["type"], "at": when, "action": action}
            for index, (action, when) in enumerate(plan_actions(clinic=clinic, rule=rule, start=at))
        ]
        if evaluation.matched
        else [],
        "stops_processing": evaluation.matched and rule.stop_processing,
    }


def _sample_lead(session: UnitOfWork, clinic_id: int, sample: dict) -> Lead:
    """The clinic's lead named by lead_id, or a transient lead made of the sample's fields."""
    if sample.get("lead_id") is not None:
        lead = session.get(Lead, sample["lead_id"])
        if lead is None or lead.clinic_id != clinic_id or lead.deleted_at is not None:
            raise NotFound(f"lead {sample['lead_id']} not found")
        return lead
    fields = sample.get("lead") or {}
    known = {name: fields[name] for name in rules.LEAD_FIELDS if name in fields and hasattr(Lead, name)}
    return Lead(id=0, clinic_id=clinic_id, first_name="Sample", last_name="Lead", **known)


def simulate_rule(*, session: UnitOfWork, actor: Actor, rule_id: int, days: int, now: datetime) -> dict:
    """Replay the rule over the clinic's events of the last `days` days: what it would have made,
    per day and per coordinator. Reads only; computed fields are taken as of each event."""
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id)
    return replay(session=session, actor=actor, rule=rule, days=days, now=now)


def _lead_id_of(row: DomainEvent) -> int | None:
    """The lead a stored event is about (the replay reads the rows as stored, as the rules read them:
    by field name)."""
    return row.subject_id if row.subject_type == "lead" else (row.payload or {}).get("lead_id")


def replay(*, session: UnitOfWork, actor: Actor, rule: AutomationRule, days: int, now: datetime) -> dict:
    """`simulate_rule` for a rule in hand (a saved one or a draft); also names the leads that would
    have matched (`matched_leads`: the first MATCHES_EXPLAINED, each with its first matching event's
    time and the conditions as evaluated then, the why)."""
    clinic = session.get(Clinic, actor.clinic_id)
    since = now - timedelta(days=days)
    past = list(
        session.scalars(
            sa.select(DomainEvent)
            .where(
                DomainEvent.clinic_id == actor.clinic_id,
                DomainEvent.type == rule.trigger,
                DomainEvent.occurred_at >= since,
                DomainEvent.occurred_at <= now,
            )
            .order_by(DomainEvent.occurred_at, DomainEvent.id)
        )
    )
    leads = _leads_by_id(session, {_lead_id_of(e) for e in past} - {None})
    per_day: dict[str, Counter] = defaultdict(Counter)
    per_user: dict[int | None, Counter] = defaultdict(Counter)
    matched, matched_leads = 0, {}
    for event in past:
        lead = leads.get(_lead_id_of(event))
        if lead is None:
            continue
        context = build_context(
            session=session,
            lead=lead,
            event_type=event.type,
            payload=event.payload or {},
            at=event.occurred_at,
        )
        evaluation = rules.evaluate(rule.conditions, context)
        if not evaluation.matched:
            continue
        matched += 1
        if lead.id not in matched_leads and len(matched_leads) < MATCHES_EXPLAINED:
            matched_leads[lead.id] = {
                "lead_id": lead.id,
                "at": event.occurred_at,
                "why": evaluation.conditions,
            }
        for action, at in plan_actions(clinic=clinic, rule=rule, start=event.occurred_at):
            per_day[at.date().isoformat()][action["type"]] += 1
            per_user[lead.assigned_to_id][action["type"]] += 1
    return {
        "rule_id": rule.id,
        "version": rule.version,
        "days": days,
        "events_considered": len(past),
        "events_matched": matched,
        "totals": dict(sum((c for c in per_day.values()), Counter())),
        "per_day": [{"date": day, "actions": dict(counts)} for day, counts in sorted(per_day.items())],
        "per_coordinator": _per_coordinator(session, per_user),
        "matched_leads": list(matched_leads.values()),
    }


def _leads_by_id(session: UnitOfWork, ids: set[int]) -> dict[int, Lead]:
    if not ids:
        return {}
    return {lead.id: lead for lead in session.scalars(sa.select(Lead).where(Lead.id.in_(ids)))}


def _per_coordinator(session: UnitOfWork, per_user: dict) -> list[dict]:
    names = dict(
        session.execute(sa.select(User.id, User.name).where(User.id.in_([u for u in per_user if u]))).all()
    )
    return [
        {"user_id": user_id, "name": names.get(user_id), "actions": dict(counts)}
        for user_id, counts in sorted(per_user.items(), key=lambda item: (item[0] is None, item[0] or 0))
    ]
