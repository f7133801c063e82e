"""The pipeline board: the clinic's stages as columns, each with how many leads it holds, what they are
worth and its first cards, under the board's filters (owner, source, age, treatment interest).

A column shows its first `CARDS_PER_COLUMN` leads and counts the rest, so a clinic with thousands of
open leads gets a page of a few hundred cards: an open stage its oldest leads first (by age: the
longest waiting first), a closed stage (converted, lost) only the leads that entered it in the last
`CLOSED_DAYS` days, the most recent first. A column's value is the treatment value recorded at
conversion where there is one, and the clinic's average recorded value for each other lead (no value
recorded yet: none). Moving a card is the API's stage change (`service.change_stage`), not this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import sqlalchemy as sa

from app.domains.leads import listing
from app.domains.leads.models import OPEN_STATUSES, Lead, TreatmentInterest
from app.domains.pipeline import service
from app.domains.pipeline.models import PipelineStage
from app.platform import phi_policy
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.roles import Actor

CARDS_PER_COLUMN = 50
CLOSED_DAYS = 30
# A lead's age (days since it came in) as the board filters it: (at least, under) days.
AGES = {"day": (0, 1), "week": (1, 7), "month": (7, 30), "older": (30, None)}


@dataclass(frozen=True)
class BoardFilters:
    """owner: a user id, "me" or "none" (unassigned); source_id; age: a key of AGES; treatment_interest:
    a TreatmentInterest (PHI: only a reader with `lead:phi` may filter by it)."""

    owner: str | None = None
    source_id: int | None = None
    age: str | None = None
    treatment_interest: str | None = None


@dataclass(frozen=True)
class Column:
    stage: PipelineStage
    count: int
    value: Decimal | None
    leads: list[SimpleNamespace]  # each shown lead's CARD_COLUMNS as attributes (card_lead)

    @property
    def more(self) -> int:
        """How many of the column's leads are counted but not shown."""
        return self.count - len(self.leads)


def _conditions(session: UnitOfWork, actor: Actor, filters: BoardFilters, now: datetime) -> list:
    if filters.treatment_interest is not None:
        if not phi_policy.may_read_phi(actor):
            # Filtering by it is a question about it: the answer would tell who has that interest.
            raise ValidationFailed("treatment_interest", "filtering by treatment interest needs lead:phi")
        if filters.treatment_interest not in TreatmentInterest.__members__:
            raise ValidationFailed(
                "treatment_interest", f"no treatment interest {filters.treatment_interest!r}"
            )
    if filters.age is not None and filters.age not in AGES:
        raise ValidationFailed("age", f"must be one of {', '.join(AGES)}")
    # The owner and source filters are the lead list's own (GET /api/leads?assigned_to=&source=).
    conditions = listing.list_conditions(
        session=session, actor=actor, filters={"assigned_to": filters.owner, "source": filters.source_id}
    )
    if filters.age is not None:
        at_least, under = AGES[filters.age]
        conditions.append(Lead.created_at <= now - timedelta(days=at_least))
        if under is not None:
            conditions.append(Lead.created_at > now - timedelta(days=under))
    if filters.treatment_interest is not None:
        # A JSON list of enum names: its text holds the name in quotes on every database.
        text = sa.cast(Lead.treatment_interest, sa.String)
        conditions.append(text.like(f'%"{filters.treatment_interest}"%'))
    return conditions


# What a card shows and its badges look up: only these columns are read (the encrypted ones, a
# decryption each, are never needed on a card), as plain rows: a few hundred ORM instances a page cost
# their identity and deferred-column bookkeeping each, for nothing a card needs.
CARD_COLUMNS = (
    Lead.id, Lead.clinic_id, Lead.status, Lead.pipeline_stage, Lead.stage_entered_at, Lead.created_at,
    Lead.first_name, Lead.last_name, Lead.patient_first_name, Lead.patient_last_name,
    Lead.patient_relationship, Lead.patient_birth_year, Lead.email,
    Lead.phone, Lead.phone_alt, Lead.assigned_to_id, Lead.source_id,
)  # fmt: skip


def card_lead(row: sa.Row) -> SimpleNamespace:
    """A card's lead: its columns as attributes, which the lead list's flags are set on (in_sequence)."""
    return SimpleNamespace(**row._mapping)


def _on_board(stage: PipelineStage, now: datetime) -> sa.ColumnElement[bool]:
    """Which leads a column holds: an open stage's open leads; a closed stage's recent entries."""
    if stage.is_terminal:
        return Lead.stage_entered_at >= now - timedelta(days=CLOSED_DAYS)
    return Lead.status.in_([s.value for s in OPEN_STATUSES])


def _figures(session: UnitOfWork, where: list, stages: list[PipelineStage], now: datetime) -> dict:
    """{slug: (leads, leads with a recorded value, their sum)}: one query for the open stages (read by
    status), one for the closed ones (by the time they entered)."""
    figures = {}
    for terminal in (False, True):
        group = [s for s in stages if s.is_terminal == terminal]
        if not group:
            continue
        rows = session.execute(
            sa.select(
                Lead.pipeline_stage, sa.func.count(), sa.func.count(Lead.treatment_value),
                sa.func.sum(Lead.treatment_value),
            )
            .where(*where, Lead.pipeline_stage.in_([s.slug for s in group]), _on_board(group[0], now))
            .group_by(Lead.pipeline_stage)
        )  # fmt: skip
        figures.update({slug: (count, valued, recorded) for slug, count, valued, recorded in rows})
    return figures


def _average_value(session: UnitOfWork, clinic_id: int) -> Decimal | None:
    return session.scalar(
        sa.select(sa.func.avg(Lead.treatment_value)).where(
            Lead.clinic_id == clinic_id,
            # A value is recorded at conversion: these three read by ix_leads_clinic_treatment_value.
            Lead.converted_at.is_not(None),
            Lead.deleted_at.is_(None),
            Lead.treatment_value.is_not(None),
        )
    )


def _value(count: int, valued: int, recorded, average) -> Decimal | None:
    if average is None:
        return Decimal(recorded) if valued else None
    return (Decimal(recorded or 0) + (count - valued) * Decimal(average)).quantize(Decimal("0.01"))


def board(
    *,
    session: UnitOfWork,
    actor: Actor,
    filters: BoardFilters,
    now: datetime,
    per_column: int | None = None,
) -> list[Column]:
    """The board's columns in stage order: count, value and first cards of each, under `filters`
    (a bad filter is a 422 naming it), at most `per_column` (CARDS_PER_COLUMN) cards a column. The
    cards carry the lead list's flags (`in_sequence`)."""
    per_column = per_column or CARDS_PER_COLUMN
    stages = service.list_stages(session=session, clinic_id=actor.clinic_id)
    where = _conditions(session, actor, filters, now)
    figures = _figures(session, where, stages, now)
    average = _average_value(session, actor.clinic_id)
    columns = []
    for stage in stages:
        count, valued, recorded = figures.get(stage.slug, (0, 0, None))
        order = (Lead.stage_entered_at.desc(),) if stage.is_terminal else (Lead.created_at.asc(),)
        shown = (
            [
                card_lead(row)
                for row in session.execute(
                    sa.select(*CARD_COLUMNS)
                    .where(*where, Lead.pipeline_stage == stage.slug, _on_board(stage, now))
                    .order_by(*order, Lead.id)
                    .limit(per_column)
                )
            ]
            if count
            else []
        )
        columns.append(Column(stage, count, _value(count, valued, recorded, average), shown))
    shown = [lead for column in columns for lead in column.leads]
    listing.with_flags(session, shown)
    _audit(session, actor, filters, shown, now)
    return columns


def _audit(
    session: UnitOfWork, actor: Actor, filters: BoardFilters, shown: list[SimpleNamespace], now: datetime
) -> None:
    # As the lead list's read is audited: who saw which leads, and whether with PHI.
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            action="lead.board",
            subject_type="lead",
            subject_id=None,
            after={
                "filters": {k: str(v) for k, v in vars(filters).items() if v is not None},
                "lead_ids": [lead.id for lead in shown],
                "phi": phi_policy.may_read_phi(actor),
            },
            at=now,
        ),
    )
