"""What the pipeline board shows: the pipeline's columns (app/domains/pipeline/board.py) with each
card said for a person — the contact's name (and whom the lead is for, its patients other than the
contact, for a reader with `lead:phi`: "Maria Lopez for Diego (12)"), age,
owner, next step (or "No next step" and why), source and badges (possible duplicate, in a sequence,
SLA breached) — and the
choices of its filters. Each part is read by its domain's service; nothing is queried here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from app.console.story import names_of_clinic
from app.console.wording import Names, no_next_step, patients_for, when
from app.domains.auth import service as auth
from app.domains.automation import orphans
from app.domains.leads import duplicates, sources
from app.domains.leads.models import TreatmentInterest
from app.domains.leads.rules import COORDINATOR_ROLES
from app.domains.pipeline import board as pipeline_board
from app.domains.tasks import team
from app.domains.tasks.sla import service as sla
from app.platform.phi_policy import may_read_phi
from app.platform.roles import Actor


@dataclass(frozen=True)
class Card:
    id: int
    stage: str
    name: str
    patient: str | None  # only for a reader with lead:phi
    age: str
    owner: str
    next_step: str
    source: str
    badges: tuple[str, ...]
    stranded: str | None = None  # why the lead has no next step, in words; None when it has one


def age_of(created_at: datetime, now: datetime) -> str:
    """How long ago a lead came in, briefly: "40 min", "5 h", "3 d"."""
    minutes = max(int((now - created_at).total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} d"


def _next_step(task, names: Names) -> str:
    if task is None:
        return "An automated step is planned"  # no task: a pending step or a sequence (else it is stranded)
    return f"{task.title}, due {when(task.due_at, names)}"


def _badges(lead: SimpleNamespace, twins: set[int], breached: set[int]) -> tuple[str, ...]:
    found = []
    if lead.id in twins:
        found.append("Possible duplicate")
    if getattr(lead, "in_sequence", False):
        found.append("In sequence")
    if lead.id in breached:
        found.append("SLA breached")
    return tuple(found)


def _cards(
    session, actor: Actor, leads: list[SimpleNamespace], names: Names, now: datetime
) -> dict[int, Card]:
    clinic_id, ids = actor.clinic_id, [lead.id for lead in leads]
    twins = duplicates.leads_with_possible_duplicates(session=session, clinic_id=clinic_id, leads=leads)
    breached = sla.breached_leads(session=session, clinic_id=clinic_id, lead_ids=ids)
    steps = team.next_tasks(session=session, clinic_id=clinic_id, lead_ids=ids)
    stranded = orphans.leads_without_next_step(session=session, clinic_id=clinic_id, lead_ids=ids)
    phi = may_read_phi(actor)
    year = now.astimezone(names.zone).year
    cards = {}
    for lead in leads:
        contact = (lead.first_name, lead.last_name)
        patient = patients_for(lead.patients, year, contact) if phi else None  # set by the board's read
        cards[lead.id] = Card(
            id=lead.id,
            stage=lead.pipeline_stage,
            name=f"{lead.first_name} {lead.last_name}".strip(),
            patient=patient,
            age=age_of(lead.created_at, now),
            owner=names.users.get(lead.assigned_to_id, "Unassigned") if lead.assigned_to_id else "Unassigned",
            next_step=_next_step(steps.get(lead.id), names),
            source=names.sources.get(lead.source_id, f"#{lead.source_id}"),
            badges=_badges(lead, twins, breached),
            stranded=no_next_step(stranded[lead.id]) if lead.id in stranded else None,
        )
    return cards


def board_page(*, session, actor: Actor, filters: pipeline_board.BoardFilters, now: datetime) -> dict:
    """The board's columns (each with its cards said for `actor`), the names and the filters' choices."""
    columns = pipeline_board.board(session=session, actor=actor, filters=filters, now=now)
    names = names_of_clinic(session=session, actor=actor)
    cards = _cards(session, actor, [lead for column in columns for lead in column.leads], names, now)
    owners = [
        (user.id, user.name)
        for user in auth.list_users(session=session, clinic_id=actor.clinic_id)
        if user.role in COORDINATOR_ROLES and user.active
    ]
    return {
        "columns": [
            {"column": column, "cards": [cards[lead.id] for lead in column.leads]} for column in columns
        ],
        "names": names,
        "owners": owners,
        "sources": [(s.id, s.name) for s in sources.list_sources(session=session, actor=actor)],
        "ages": list(pipeline_board.AGES),
        "interests": [i.value for i in TreatmentInterest] if may_read_phi(actor) else [],
    }
