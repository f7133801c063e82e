"""Automation use cases for a clinic's rules: the default rules, create, edit, delete and versions.

Processing an event against the rules is processing.py (with the context a rule reads in
language/context.py); trying and simulating a rule, simulation.py; a lead's why-trail, why_trail.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from app.domains.automation import rules, steps
from app.domains.automation.defaults import DEFAULT_RULES
from app.domains.automation.language import validation as rule_validation
from app.domains.automation.language.triggers import TRIGGERS
from app.domains.automation.models import (
    AutomationRule,
    AutomationRuleVersion,
    AutomationStep,
    StepStatus,
)
from app.domains.lead_messages import templates as message_templates
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Actor
from app.platform.scheduling import service as scheduling

if TYPE_CHECKING:
    from app.domains.auth.models import Clinic

RULE_FIELDS = (
    "name",
    "description",
    "trigger",
    "conditions",
    "actions",
    "priority",
    "stop_processing",
    "active",
)
SYSTEM_ACTOR = "system"

# --- default rules --------------------------------------------------------------------------------


def seed_default_rules(
    *, session: UnitOfWork, clinic: Clinic, now: datetime, seeded_clinics: set[int]
) -> None:
    _add_missing_defaults(session, clinic.id, now, seeded_clinics)


def ensure_default_rules(*, session: UnitOfWork, clinic_id: int, now: datetime, seeded: set[int]) -> bool:
    """Give a clinic made before the rules existed its defaults (checked once per engine: `seeded`,
    the engine's set of clinics already made sure of, app/bootstrap.py Caches.seeded_clinics).
    Whether it added any: the clinic's rule set changed in this transaction."""
    return clinic_id not in seeded and _add_missing_defaults(session, clinic_id, now, seeded) > 0


def _add_missing_defaults(session: UnitOfWork, clinic_id: int, now: datetime, seeded: set[int]) -> int:
    """Add the default rules a clinic lacks (once per default: a deleted one stays deleted); how many."""
    have = set(
        session.scalars(
            sa.select(AutomationRule.default_key).where(
                AutomationRule.clinic_id == clinic_id, AutomationRule.default_key.is_not(None)
            )
        )
    )
    missing = [definition for definition in DEFAULT_RULES if definition["default_key"] not in have]
    # All the rules in one flush, then their first versions in another (two statements, not two a
    # rule: every new clinic is seeded, and the suite makes one a test).
    rules = [_new_rule(clinic_id, definition, SYSTEM_ACTOR, now) for definition in missing]
    session.add_all(rules)
    session.flush()
    for rule in rules:
        _save_version(session, rule, SYSTEM_ACTOR, now)
    session.flush()
    # Remembered only once committed: a rolled-back seeding must be redone by the next caller.
    session.publish_after_commit(SeededClinic(seeded, clinic_id))
    return len(missing)


@dataclass(frozen=True)
class SeededClinic:
    """What a unit that made sure of a clinic's default rules tells the engine once it commits:
    the clinic joins `seeded` (the engine's set), and is not checked again."""

    seeded: set[int]
    clinic_id: int

    def publish(self) -> None:
        self.seeded.add(self.clinic_id)


# --- rules: CRUD and versions ---------------------------------------------------------------------


def _definition(rule: AutomationRule) -> dict:
    return {name: getattr(rule, name) for name in RULE_FIELDS}


def _insert_rule(
    session: UnitOfWork, clinic_id: int, data: dict, actor_ref: str, now: datetime
) -> AutomationRule:
    rule = _new_rule(clinic_id, data, actor_ref, now)
    session.add(rule)
    session.flush()
    _save_version(session, rule, actor_ref, now)
    return rule


def _new_rule(clinic_id: int, data: dict, actor_ref: str, now: datetime) -> AutomationRule:
    return AutomationRule(
        clinic_id=clinic_id,
        name=data["name"],
        description=data.get("description"),
        trigger=data["trigger"],
        conditions=data.get("conditions") or [],
        actions=data["actions"],
        priority=data.get("priority", 100),
        stop_processing=data.get("stop_processing", False),
        active=data.get("active", True),
        default_key=data.get("default_key"),
        version=1,
        created_at=now,
        updated_at=now,
        created_by=actor_ref,
        updated_by=actor_ref,
    )


def _save_version(session: UnitOfWork, rule: AutomationRule, actor_ref: str, now: datetime) -> None:
    session.add(
        AutomationRuleVersion(
            rule_id=rule.id,
            version=rule.version,
            definition=_definition(rule),
            created_at=now,
            created_by=actor_ref,
        )
    )


def validate_rule(data: dict) -> None:
    """422 naming the first wrong part: an unknown trigger, field, operator or action type."""
    errors: dict = {}
    if "trigger" in data and data["trigger"] not in TRIGGERS:
        errors["trigger"] = [f"unknown trigger {data['trigger']!r}; known: {', '.join(TRIGGERS)}"]
    if "conditions" in data and (problems := rule_validation.validate_conditions(data["conditions"])):
        errors["conditions"] = problems
    if "actions" in data and (problems := rule_validation.validate_actions(data["actions"])):
        errors["actions"] = problems
    if errors:
        raise ValidationFailed(errors)


def list_rules(
    *, session: UnitOfWork, clinic_id: int, now: datetime, seeded: set[int], active_only: bool = False
) -> list[AutomationRule]:
    """The clinic's rules; `seeded`: the engine's clinics whose defaults are made sure of."""
    ensure_default_rules(session=session, clinic_id=clinic_id, now=now, seeded=seeded)
    stmt = sa.select(AutomationRule).where(
        AutomationRule.clinic_id == clinic_id, AutomationRule.deleted_at.is_(None)
    )
    if active_only:
        stmt = stmt.where(AutomationRule.active.is_(True))
    return list(session.scalars(stmt.order_by(AutomationRule.priority, AutomationRule.id)))


def get_rule(
    *, session: UnitOfWork, clinic_id: int, rule_id: int, for_update: bool = False
) -> AutomationRule:
    stmt = sa.select(AutomationRule).where(
        AutomationRule.id == rule_id,
        AutomationRule.clinic_id == clinic_id,
        AutomationRule.deleted_at.is_(None),
    )
    rule = session.scalar(stmt.with_for_update() if for_update else stmt)
    if rule is None:
        raise NotFound(f"rule {rule_id} not found")
    return rule


def _check_message_templates(session: UnitOfWork, clinic_id: int, actions: list[dict]) -> None:
    """422 naming the action whose message template is missing or of the other channel."""
    for index, action in enumerate(actions):
        if action.get("type") in rules.MESSAGE_ACTIONS and "template_id" in action:
            channel = {"send_email": "email", "send_sms": "sms", "send_whatsapp": "whatsapp"}.get(
                action["type"], "instagram"
            )
            try:
                message_templates.template_for(
                    session=session, clinic_id=clinic_id, template_id=action["template_id"], channel=channel
                )
            except ValidationFailed as wrong:
                raise ValidationFailed({"actions": {str(index): wrong.errors["json"]}}) from None


def create_rule(*, session: UnitOfWork, actor: Actor, data: dict, now: datetime) -> AutomationRule:
    validate_rule(data)
    _check_message_templates(session, actor.clinic_id, data.get("actions") or [])
    rule = _insert_rule(session, actor.clinic_id, data, actor.ref, now)
    _audit(session, actor, "automation_rule.created", rule, (None, _definition(rule)), now)
    return rule


def update_rule(
    *, session: UnitOfWork, actor: Actor, rule_id: int, changes: dict, now: datetime
) -> AutomationRule:
    """Edit a rule: a new version. Steps the old version scheduled keep running as that version."""
    validate_rule(changes)
    _check_message_templates(session, actor.clinic_id, changes.get("actions") or [])
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id, for_update=True)
    before = _definition(rule)
    for name, value in changes.items():
        setattr(rule, name, value)
    if _definition(rule) == before:
        return rule  # nothing changed: no new version
    rule.version += 1
    rule.updated_at, rule.updated_by = now, actor.ref
    _save_version(session, rule, actor.ref, now)
    _audit(session, actor, "automation_rule.updated", rule, audit.changes(before, _definition(rule)), now)
    return rule


def delete_rule(*, session: UnitOfWork, actor: Actor, rule_id: int, now: datetime) -> None:
    """Soft delete: the rule stops firing and its pending steps are cancelled; its history stays."""
    rule = get_rule(session=session, clinic_id=actor.clinic_id, rule_id=rule_id, for_update=True)
    rule.deleted_at, rule.active, rule.updated_at, rule.updated_by = now, False, now, actor.ref
    pending = session.scalars(
        sa.select(AutomationStep).where(
            AutomationStep.rule_id == rule.id, AutomationStep.status == StepStatus.SCHEDULED
        )
    )
    for step in pending:
        steps.finish(step, StepStatus.CANCELLED, now, reason=f"rule {rule.id} was deleted")
        if step.job_id is not None:
            scheduling.cancel_job(session=session, job_id=step.job_id, now=now)
    _audit(session, actor, "automation_rule.deleted", rule, (_definition(rule), None), now)


def rule_versions(*, session: UnitOfWork, clinic_id: int, rule_id: int) -> list[AutomationRuleVersion]:
    get_rule(session=session, clinic_id=clinic_id, rule_id=rule_id)
    stmt = sa.select(AutomationRuleVersion).where(AutomationRuleVersion.rule_id == rule_id)
    return list(session.scalars(stmt.order_by(AutomationRuleVersion.version.desc())))


def _audit(
    session,
    actor: Actor,
    action: str,
    rule: AutomationRule,
    before_after: tuple[dict | None, dict | None],
    now,
) -> None:
    """The rule's audit event. `before_after`: what its definition was and is (an edit's: only the
    changed keys); None on the side where the rule did not exist yet (created) or no more (deleted)."""
    before, after = before_after
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=rule.clinic_id,
            actor=actor.ref,
            action=action,
            subject_type="automation_rule",
            subject_id=rule.id,
            before=before,
            after=after,
            at=now,
        ),
    )
