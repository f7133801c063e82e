"""Stale leads, in both of the spec's senses, flagged on the lead itself by a beat sweep.

- Over the stage's `max_days_in_stage` (e.g. 7 days in Pending Decision): once per stay in a stage.
- Quiet: no activity by a person or the lead for the clinic's `stale_after_days` (seed 002, default
  7) on an open lead: once per quiet spell (the next activity ends the spell).

Each find writes `lead.stale` (with `kind` "stage" or "quiet") for rules and integrators. The fact
that a stay or a spell was flagged lives on the lead (`stage_stale_at`, `quiet_flagged_at`), not in
a ledger row's dedupe key: the ledger purges its done rows, the lead keeps its history. A flag is
set by a conditional UPDATE, so overlapping sweeps (or two beats) flag a lead once. Both queries
read partial indexes of the open leads not yet flagged: a run costs what it finds, not the table.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.models import Clinic
from app.domains.leads.models import OPEN_LEAD_SQL, Lead
from app.domains.pipeline import rules
from app.domains.pipeline.events import LeadStale
from app.domains.pipeline.models import PipelineStage
from app.platform.db import UnitOfWork
from app.platform.events import service as events

STAGE, QUIET = "stage", "quiet"
# Spelled as the partial indexes' predicates (ix_leads_stage_stale_due, ix_leads_quiet_due).
_STAY_NOT_FLAGGED = sa.text(f"stage_stale_at IS NULL AND {OPEN_LEAD_SQL}")
_SPELL_NOT_FLAGGED = sa.text(f"quiet_flagged_at IS NULL AND {OPEN_LEAD_SQL}")


def find_stale_leads(*, session: UnitOfWork, now: datetime, limit: int = 5000, turn: int = 0) -> int:
    """Flag up to `limit` leads newly stale in each sense; returns how many were flagged.

    The limit is shared out in turns: each clinic (each stage with a limit) is given an equal share,
    the clinics taken from the `turn`-th on (the next chunk's turn starts where this one's ended), so
    that a clinic with a backlog does not keep the others' leads waiting behind its own."""
    return flag_over_stage_limit(session=session, now=now, limit=limit, turn=turn) + flag_quiet(
        session=session, now=now, limit=limit, turn=turn
    )


def find_stale_leads_in_chunks(*, db, now: datetime, chunk: int) -> int:
    """`find_stale_leads` in transactions of `chunk` leads a sense at most (each one processing job
    of as many events), until none is left; returns how many it flagged."""
    flagged = turn = 0
    while True:
        with db.unit_of_work() as session:
            count = find_stale_leads(session=session, now=now, limit=chunk, turn=turn)
        if not count:
            return flagged
        flagged, turn = flagged + count, turn + chunk


def _in_turns(groups: list, limit: int, turn: int) -> tuple[list, int]:
    """The groups from the `turn`-th on (round the end), and each one's share of `limit`."""
    if not groups:
        return [], 0
    start = turn % len(groups)
    return groups[start:] + groups[:start], max(1, limit // len(groups))


def _flag(session: UnitOfWork, picked: sa.Select, values: dict, returning: tuple) -> list:
    """Set `values` on the picked leads still unflagged (a concurrent sweep's rows are skipped)."""
    flag_column = next(iter(values))
    return session.execute(
        sa.update(Lead)
        .where(Lead.id.in_(picked.scalar_subquery()), getattr(Lead, flag_column).is_(None))
        .values(**values)
        .returning(Lead.id, Lead.clinic_id, Lead.pipeline_stage, *returning)
        .execution_options(synchronize_session=False)
    ).all()


def flag_over_stage_limit(*, session: UnitOfWork, now: datetime, limit: int, turn: int = 0) -> int:
    """Open leads past their stage's limit in a stay not yet flagged: flag the stay, emit lead.stale."""
    stages = session.execute(
        sa.select(PipelineStage.clinic_id, PipelineStage.slug, PipelineStage.max_days_in_stage)
        .where(PipelineStage.max_days_in_stage.is_not(None))
        .order_by(PipelineStage.clinic_id, PipelineStage.id)
    ).all()
    flagged = 0
    stages, share = _in_turns(list(stages), limit, turn)
    for clinic_id, slug, max_days in stages:
        if flagged >= limit:
            break
        picked = (
            sa.select(Lead.id)
            .where(
                Lead.clinic_id == clinic_id,
                Lead.pipeline_stage == slug,
                Lead.stage_entered_at < now - timedelta(days=max_days),
                _STAY_NOT_FLAGGED,
            )
            .limit(min(share, limit - flagged))
        )
        for lead in _flag(session, picked, {"stage_stale_at": now}, (Lead.stage_entered_at,)):
            _emit(
                session,
                lead,
                now,
                kind=STAGE,
                stage_entered_at=lead.stage_entered_at.isoformat(),
                days_in_stage=(now - lead.stage_entered_at).days,
                max_days_in_stage=max_days,
            )
            flagged += 1
    return flagged


def flag_quiet(*, session: UnitOfWork, now: datetime, limit: int, turn: int = 0) -> int:
    """Open leads with no activity for their clinic's quiet days, spell not yet flagged: flag, emit."""
    flagged = 0
    clinics = session.execute(sa.select(Clinic.id, Clinic.settings).order_by(Clinic.id)).all()
    clinics, share = _in_turns(list(clinics), limit, turn)
    for clinic_id, settings in clinics:
        if flagged >= limit:
            break
        days = rules.stale_after_days(settings)
        picked = (
            sa.select(Lead.id)
            .where(
                Lead.clinic_id == clinic_id,
                Lead.last_activity_at < now - timedelta(days=days),
                _SPELL_NOT_FLAGGED,
            )
            .limit(min(share, limit - flagged))
        )
        for lead in _flag(session, picked, {"quiet_flagged_at": now}, (Lead.last_activity_at,)):
            _emit(
                session,
                lead,
                now,
                kind=QUIET,
                last_activity_at=lead.last_activity_at.isoformat(),
                quiet_days=days,
            )
            flagged += 1
    return flagged


def _emit(session: UnitOfWork, lead, now: datetime, **payload) -> None:
    events.emit(
        session=session,
        event=LeadStale(lead_id=lead.id, stage=lead.pipeline_stage, **payload),
        subject=events.Subject.lead(lead),
        now=now,
    )
