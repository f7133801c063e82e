"""Carrying out a rule's actions for a lead: tasks, staff notifications, (re)assignment, suggestions,
priority and stage moves.

Messages to the lead (send_email, send_sms, send_instagram, send_whatsapp) pass the contact policy
in `outreach.py`; a recurring follow-up is `recurring.py`'s; a sequence enrollment is
app/domains/sequences/service.py's. Each executor ends its step with what it made, or why it made
nothing, so the why-trail always has an answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from jinja2 import TemplateError

from app.domains.activities import service as activities
from app.domains.assignment import service as assignment
from app.domains.assignment import staff
from app.domains.auth.models import Clinic, User
from app.domains.automation import steps
from app.domains.automation.models import AutomationStep, StepStatus
from app.domains.business_hours.rules import when_text, within_business_hours
from app.domains.lead_messages import templates as message_templates
from app.domains.leads import updates as lead_updates
from app.domains.outbound import service as notifications
from app.domains.pipeline import service as pipeline
from app.domains.pipeline.models import PipelineStage
from app.domains.pipeline.rules import LOST
from app.domains.tasks import creation as task_creation
from app.domains.tasks.models import TaskTemplate
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, InvalidTransition, ValidationFailed
from app.platform.roles import Actor
from app.platform.scheduling.memo import Memo

if TYPE_CHECKING:
    from app.domains.leads.models import Lead

# --- create_task ----------------------------------------------------------------------------------


def _task_fields(session: UnitOfWork, lead: Lead, action: dict) -> dict | None:
    """Title, type, priority and description from the action, its template, or the stage's template."""
    template_id = action.get("template_id")
    if action.get("template") == "stage":
        template_id = session.scalar(
            sa.select(PipelineStage.task_template_id).where(
                PipelineStage.clinic_id == lead.clinic_id,
                PipelineStage.slug == action.get("stage", lead.pipeline_stage),
            )
        )
    fields = {
        "title": action.get("title"),
        "type": action.get("task_type", "CALL"),
        "priority": action.get("priority", "NORMAL"),
        "description": action.get("description"),
    }
    if template_id is None:
        return fields if fields["title"] else None
    template = session.get(TaskTemplate, template_id)
    if template is None or template.clinic_id != lead.clinic_id or not template.is_active:
        return None
    return {
        "title": action.get("title") or template.title,
        "type": template.type,
        "priority": action.get("priority") or template.priority,
        "description": action.get("description") or template.description,
    }


def _assignee_id(session: UnitOfWork, lead: Lead, assignee: dict, step: AutomationStep) -> int | None:
    """Who gets the task: the lead's owner, a named user, someone of a role, or the next in turn."""
    kind = assignee.get("kind", "lead_owner")
    if kind == "user" and assignee["user_id"] in staff.in_office(session, lead.clinic_id):
        return assignee["user_id"]
    if kind in ("role", "round_robin"):
        role = assignee["role"] if kind == "role" else "treatment_coordinator"
        people = staff.in_office(session, lead.clinic_id, [role])
        if not people:
            return lead.assigned_to_id
        return assignment.next_in_turn(
            session=session,
            clinic_id=lead.clinic_id,
            scope=f"automation:{role}",
            user_ids=people,
            now=step.created_at,
        )
    return lead.assigned_to_id  # lead_owner, or a named user who is gone: the owner does it


def _recheck_failure(session: UnitOfWork, lead: Lead, action: dict) -> str | None:
    """Why a deferred task is no longer wanted when its time comes (None: make it)."""
    recheck = action.get("recheck") or {}
    since = datetime.fromisoformat(action["event_at"]) if action.get("event_at") else None
    stages = recheck.get("stages")
    if stages and lead.pipeline_stage not in stages:
        return f"the lead has moved on to {lead.pipeline_stage}"
    if recheck.get("same_stay") and since is not None and lead.stage_entered_at > since:
        return "the lead left the stage and came back: the new stay has its own step"
    if (
        recheck.get("no_contact_since_event")
        and since is not None
        and activities.contact_since(session=session, lead_id=lead.id, since=since)
    ):
        return "the lead has been contacted since"
    return None


def _merged_task_texts(session: UnitOfWork, lead: Lead, fields: dict) -> dict:
    """`fields` with the title and description merged for `lead` (PHI kept out of the title)."""
    texts = (fields["title"], fields["description"] or "")
    values = message_templates.merge_values(session=session, lead=lead, texts=texts)
    title, description = message_templates.merge_task_texts(fields["title"], fields["description"], values)
    return {**fields, "title": title, "description": description}


def create_task(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    make_task(session=session, step=step, lead=lead, action=step.action, now=now)


def make_task(*, session: UnitOfWork, step: AutomationStep, lead: Lead, action: dict, now: datetime) -> None:
    """The task `action` asks for, made by `step` (a create_task's, or one occurrence of a recurring
    follow-up); ends the step with the task or why there is none."""
    fields = _task_fields(session, lead, action)
    if fields is None:
        steps.finish(step, StepStatus.SKIPPED, now, reason="the task template is missing or inactive")
        return
    try:
        fields = _merged_task_texts(session, lead, fields)
    except TemplateError as error:  # a text saved before today's bounds: fail the step, never retry it
        steps.finish(step, StepStatus.FAILED, now, reason=f"the task text cannot be rendered: {error}")
        return
    problem = _recheck_failure(session, lead, action)
    if problem is not None:
        steps.finish(step, StepStatus.SKIPPED, now, reason=problem)
        return
    due_at = step.run_at
    if fields["type"] == "CALL":
        due_at = within_business_hours(session.get(Clinic, lead.clinic_id), due_at)
    task = task_creation.create_system_task(
        session=session,
        lead=lead,
        now=now,
        task=task_creation.SystemTask(
            title=fields["title"],
            type=fields["type"],
            priority=fields["priority"],
            follow_lead_priority=action.get("follow_lead_priority", True),
            description=fields["description"],
            due_at=due_at,
            escalate_after_minutes=action.get("escalate_after_minutes"),
            assigned_to_id=_assignee_id(session, lead, action.get("assignee") or {}, step),
            dedupe_key=f"automation-step:{step.id}",
            known_new=True,  # the step was made in this transaction: its key is new
            origin=steps.origin_of(step),
            # Silent unless the action asks (a deferred follow-up tells the owner it is there): the
            # assignee sees it in my-tasks and is reminded before it is due; a rule that wants a word
            # said at once adds a notify action (as speed to lead does).
            notify=bool(action.get("notify_owner")),
            on_closed_lead=not lead.is_open,  # only a close's own steps get here for a closed lead
        ),
    )
    if task is None:
        steps.finish(step, StepStatus.SKIPPED, now, reason="nobody in the clinic can take the task")
        return
    steps.finish(step, StepStatus.DONE, now, task_id=task.id, due_at=task.due_at.isoformat())


# --- notify ---------------------------------------------------------------------------------------


def _recipients(session: UnitOfWork, lead: Lead, action: dict) -> list[int]:
    people: list[int] = []
    if action.get("lead_owner") and lead.assigned_to_id:
        people.append(lead.assigned_to_id)
    for user_id in action.get("users") or []:
        user = session.get(User, user_id)
        if user is not None and user.clinic_id == lead.clinic_id and user.active:
            people.append(user_id)
    for role in action.get("roles") or []:
        people.extend(staff.in_office(session, lead.clinic_id, [role]))
    return list(dict.fromkeys(people))  # each person once, in order


def notify(
    *, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime, memo: Memo | None = None
) -> None:
    """Tell the action's staff (the lead's owner, users, roles), each by their preferences. `memo`:
    the transaction's, from the job that runs the step (steps.execute): a drainer's batch of new
    leads tells the same coordinator, whose preferences it reads once."""
    action = step.action
    texts = (action["title"], action.get("body") or "")
    extra = action.get("merge") or {}
    if any("email_goes_at" in text for text in texts):
        extra = {**extra, "email_goes_at": _email_goes_at(session, step, now)}
    values = message_templates.merge_values(session=session, lead=lead, extra=extra, texts=texts)
    recipients = _recipients(session, lead, action)
    if not recipients:
        steps.finish(step, StepStatus.SKIPPED, now, reason="nobody to notify (no owner or active user)")
        return
    made = []
    for user_id in recipients:
        row = notifications.notify_staff(
            session=session,
            clinic_id=lead.clinic_id,
            user_id=user_id,
            notice=notifications.StaffNotice(
                kind=action.get("kind", "automation"),
                # Stored once, read in the inbox and the console: PHI merge fields as `[their name]`.
                title=message_templates.merge_for_staff(action["title"], values),
                body=message_templates.merge_for_staff(action.get("body") or "", values),
                link=f"/api/leads/{lead.id}",
                dedupe_key=f"automation-step:{step.id}:user:{user_id}",
                origin=steps.origin_of(step),
                known_new=step.created_at == now,  # a step made in this transaction: its keys are new
            ),
            now=now,
            memo=memo,
        )
        if row is not None:
            made.append(row.id)
    steps.finish(step, StepStatus.DONE, now, notification_ids=made, user_ids=recipients)


def _email_goes_at(session: UnitOfWork, step: AutomationStep, now: datetime) -> str:
    """When the email the same rule planned for the same event goes, in the clinic's time (run
    before the note, it has already been sent, or moved out of quiet hours or the clinic's pause)."""
    email = session.scalar(
        sa.select(AutomationStep)
        .where(
            AutomationStep.lead_id == step.lead_id,
            AutomationStep.rule_id == step.rule_id,
            AutomationStep.event_id == step.event_id,
            AutomationStep.action_type == "send_email",
        )
        .order_by(AutomationStep.id.desc())
        .limit(1)
    )
    if email is None:
        return "is not planned"
    clinic = session.get(Clinic, step.clinic_id)
    if email.status == StepStatus.SCHEDULED:
        return f"goes {when_text(clinic, email.run_at, now)} unless they reply or book first"
    if email.status == StepStatus.DONE:
        return f"went {when_text(clinic, email.finished_at or now, now)}"
    return f"will not go: {email.result.get('reason') or email.status}"


# --- assign, suggest ------------------------------------------------------------------------------


def assign(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    user_id = step.action.get("user_id")
    if user_id is not None and user_id in staff.in_office(session, lead.clinic_id):
        pick = assignment.Pick(user_id, f"automation rule {step.rule_id} v{step.rule_version}")
    else:
        clinic = session.get(Clinic, lead.clinic_id)
        pick = assignment.pick_owner(session=session, clinic=clinic, source_id=lead.source_id, now=now)
    previous = lead.assigned_to_id
    assignment.apply(session=session, lead=lead, pick=pick, actor_ref="automation", user_id=None, now=now)
    steps.finish(step, StepStatus.DONE, now, from_user_id=previous, to_user_id=lead.assigned_to_id)


def suggest(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """A hint shown to the coordinator on the lead (e.g. mark lost); the person decides."""
    lead.suggested_action = step.action["suggestion"]
    lead.updated_at = now
    steps.finish(step, StepStatus.DONE, now, suggested_action=lead.suggested_action)


def set_priority(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """The lead's priority, changed as staff would change it: audited, on the timeline, with its
    lead.updated event (so the urgent rule follows a rule that makes a lead urgent, unless that rule
    itself ran on a lead.updated)."""
    previous, wanted = lead.priority, step.action["priority"]
    if previous == wanted:
        steps.finish(step, StepStatus.SKIPPED, now, reason=f"the lead is already {wanted}")
        return
    lead.priority = wanted
    actor_ref = f"automation:rule:{step.rule_id}" if step.rule_id else "automation"
    # A rule reacting to a lead.updated changes the lead without setting off more rules (no ping-pong).
    record = lead_updates.record_reaction if step.event_type == "lead.updated" else lead_updates.record_update
    record(
        session=session,
        lead=lead,
        old={"priority": previous},
        new={"priority": wanted},
        actor_ref=actor_ref,
        now=now,
    )
    steps.finish(step, StepStatus.DONE, now, from_priority=previous, to_priority=wanted)


# --- update_stage ---------------------------------------------------------------------------------

# What a stage move may refuse with: a missing stage, a backward move, a terminal or locked lead.
STAGE_REFUSALS = (InvalidTransition, ValidationFailed, Conflict)


def update_stage(*, session: UnitOfWork, step: AutomationStep, lead: Lead, now: datetime) -> None:
    """Move the lead's stage by the pipeline's transition rules; a refused move is skipped with why."""
    action, previous = step.action, lead.pipeline_stage
    actor = Actor.engine(lead.clinic_id, "automation")
    try:
        with session.begin_nested():  # a refusal leaves nothing half-written
            if action["stage"] == LOST:
                pipeline.mark_lost(
                    session=session,
                    actor=actor,
                    lead_id=lead.id,
                    reason=action["reason"],
                    notes=action.get("notes"),
                    now=now,
                )
            else:
                pipeline.change_stage(
                    session=session,
                    actor=actor,
                    lead_id=lead.id,
                    change=pipeline.StageChange(stage=action["stage"], notes=action.get("notes")),
                    now=now,
                    ask_why=False,
                )
    except STAGE_REFUSALS as refusal:
        steps.finish(step, StepStatus.SKIPPED, now, reason=f"stage change refused: {refusal.message}")
        return
    steps.finish(step, StepStatus.DONE, now, from_stage=previous, to_stage=lead.pipeline_stage)
