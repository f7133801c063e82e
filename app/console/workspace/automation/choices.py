"""What the rules and sequences pages read to say a rule in the clinic's words and to offer its
pickers: the clinic's users, sources, stages, message templates and sequences (wording_rules.Choices),
and leads by name (the builder's "try it on a lead"), each lead as the API shows it to the reader."""

from __future__ import annotations

from datetime import datetime

from app.console.story import names_of_clinic
from app.console.wording_rules import Choices
from app.domains.lead_messages import templates as message_templates
from app.domains.leads import listing, lookups
from app.domains.leads import schemas as lead_schemas
from app.domains.sequences import service as sequences
from app.platform import phi_policy
from app.platform.roles import Actor

LEADS_SHOWN = 8  # matches listed under the lead picker's box


def choices_of(*, session, actor: Actor) -> Choices:
    return Choices(
        names=names_of_clinic(session=session, actor=actor),
        templates={
            t.id: (t.name, t.channel)
            for t in message_templates.list_templates(session=session, clinic_id=actor.clinic_id)
        },
        sequences={
            s.id: s.name for s in sequences.list_sequences(session=session, clinic_id=actor.clinic_id)
        },
    )


def _named(rows, actor: Actor) -> list[dict]:
    schema = lead_schemas.LeadMatchOut(only=("id", "first_name", "last_name", "pipeline_stage", "created_at"))
    with phi_policy.reading_as(actor):
        shown = [schema.dump(lead) for lead in rows]
    return [
        {**lead, "name": f"{lead.get('first_name') or ''} {lead.get('last_name') or ''}".strip() or "A lead"}
        for lead in shown
    ]


def find_leads(*, session, actor: Actor, typed: str, now: datetime) -> list[dict]:
    """The clinic's leads matching what was typed (the API's search: same fields, audited), newest first."""
    typed = typed[:100]
    if len(typed.strip()) < 2:
        return []
    rows = listing.search_leads(session=session, actor=actor, q=typed, limit=LEADS_SHOWN, now=now)
    return _named(rows, actor)


def leads_named(*, session, actor: Actor, lead_ids: list[int]) -> dict[int, dict]:
    """The clinic's live leads among `lead_ids`, by id, with their names."""
    found = lookups.live_leads_by_id(session=session, clinic_id=actor.clinic_id, lead_ids=lead_ids)
    return {lead["id"]: lead for lead in _named(found.values(), actor)}
