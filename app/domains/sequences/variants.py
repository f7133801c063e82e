"""Step variants: a sequence step may carry variants (A/B/...), each with a weight; a lead gets one
deterministically, and each variant is judged on what the step is for: consultations booked and
conversions within a window. Replies are shown but are not the judge (a "remove me" is a reply).

Assignment hashes the lead's id with the step's identity (sequence id and step index), so a lead
always gets the same variant of a step, whichever process schedules it, and leads split by weight.
The significance figure is a two-proportion z-test on conversion between the best variant and each
other one (normal approximation, two-sided p-value by math.erf): a rough guide, fine for the sample
sizes a clinic sees, not a substitute for patience.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import ActivityDirection, LeadActivity
from app.domains.automation.models import AutomationStep, SequenceEnrollment, StepStatus
from app.domains.leads.models import Lead
from app.domains.pipeline.models import BOOKED_STAGE, LeadStageHistory
from app.domains.sequences.models import Sequence
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Actor

VARIANT_FIELDS = ("subject", "body", "title", "template_id")
DEFAULT_WINDOW_DAYS = 30


def pick(variants: list[dict], *, lead_id: int, sequence_id: int, index: int) -> dict:
    """The lead's variant of step `index` of the sequence: stable, weighted."""
    digest = hashlib.sha256(f"{lead_id}:{sequence_id}:{index}".encode()).digest()
    total = sum(int(v.get("weight", 1)) for v in variants)
    point = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        point -= int(variant.get("weight", 1))
        if point < 0:
            return variant
    return variants[-1]


def definition_for(definition: dict, *, lead_id: int, sequence_id: int, index: int) -> dict:
    """The step as this lead runs it: the chosen variant's texts over the step's, its key recorded."""
    variants = definition.get("variants")
    if not variants:
        return definition
    chosen = pick(variants, lead_id=lead_id, sequence_id=sequence_id, index=index)
    base = {k: v for k, v in definition.items() if k not in ("variants", *VARIANT_FIELDS)}
    return {**base, **{k: chosen[k] for k in VARIANT_FIELDS if k in chosen}, "variant": chosen["key"]}


def _sequence(session: UnitOfWork, clinic_id: int, sequence_id: int, for_update: bool = False) -> Sequence:
    stmt = sa.select(Sequence).where(Sequence.id == sequence_id, Sequence.clinic_id == clinic_id)
    sequence = session.scalar(stmt.with_for_update() if for_update else stmt)
    if sequence is None:
        raise NotFound(f"sequence {sequence_id} not found")
    return sequence


def _step_of(sequence, index: int) -> dict:
    if not 0 <= index < len(sequence.steps):
        raise NotFound(f"step {index} not found in sequence {sequence.id}")
    return sequence.steps[index]


def variant_stats(
    *, session: UnitOfWork, clinic_id: int, sequence_id: int, index: int, window_days: int, now: datetime
) -> dict:
    """Per variant of the step: sent, replied, consultations booked and conversions within the window."""
    sequence = _sequence(session, clinic_id, sequence_id)
    keys = [v["key"] for v in _step_of(sequence, index).get("variants") or []]
    window = timedelta(days=window_days)
    rows = session.execute(
        sa.select(AutomationStep.action, AutomationStep.finished_at, Lead.id, Lead.converted_at)
        .join(SequenceEnrollment, SequenceEnrollment.id == AutomationStep.enrollment_id)
        .join(Lead, Lead.id == AutomationStep.lead_id)
        .where(
            SequenceEnrollment.sequence_id == sequence.id,
            AutomationStep.sequence_step == index,
            AutomationStep.status == StepStatus.DONE,
        )
    ).all()
    counts = {key: {"sent": 0, "replied": 0, "booked": 0, "converted": 0} for key in keys}
    for action, sent_at, lead_id, converted_at in rows:
        key = action.get("variant")
        if key is None:
            continue
        tally = counts.setdefault(key, {"sent": 0, "replied": 0, "booked": 0, "converted": 0})
        end = sent_at + window
        tally["sent"] += 1
        tally["replied"] += _any(session, _replies(lead_id, sent_at, end))
        tally["booked"] += _any(session, _bookings(lead_id, sent_at, end))
        tally["converted"] += converted_at is not None and sent_at <= converted_at < end
    return {
        "sequence_id": sequence.id,
        "step": index,
        "window_days": window_days,
        "judged_on": "conversion",
        "variants": _with_figures(counts),
    }


def _replies(lead_id: int, start: datetime, end: datetime):
    return sa.select(LeadActivity.id).where(
        LeadActivity.lead_id == lead_id,
        LeadActivity.direction == ActivityDirection.INBOUND.value,
        LeadActivity.occurred_at >= start,
        LeadActivity.occurred_at < end,
    )


def _bookings(lead_id: int, start: datetime, end: datetime):
    return sa.select(LeadStageHistory.id).where(
        LeadStageHistory.lead_id == lead_id,
        LeadStageHistory.to_stage == BOOKED_STAGE,
        LeadStageHistory.entered_at >= start,
        LeadStageHistory.entered_at < end,
    )


def _any(session: UnitOfWork, stmt) -> bool:
    return session.scalar(stmt.limit(1)) is not None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _with_figures(counts: dict[str, dict]) -> list[dict]:
    """Rates per variant, and each one's two-sided p-value against the best converter."""
    best = max(counts, key=lambda k: _rate(counts[k]["converted"], counts[k]["sent"]) or 0, default=None)
    out = []
    for key, c in counts.items():
        p_value = None
        if best is not None and key != best:
            p_value = z_test_p_value(
                c["converted"], c["sent"], counts[best]["converted"], counts[best]["sent"]
            )
        out.append(
            {
                "key": key,
                **c,
                "reply_rate": _rate(c["replied"], c["sent"]),
                "booking_rate": _rate(c["booked"], c["sent"]),
                "conversion_rate": _rate(c["converted"], c["sent"]),
                "best": key == best and c["sent"] > 0,
                "p_value_vs_best": p_value,
            }
        )
    return out


def z_test_p_value(x1: int, n1: int, x2: int, n2: int) -> float | None:
    """Two-sided p-value of a two-proportion z-test (pooled); None when it cannot be computed."""
    if not n1 or not n2:
        return None
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return None
    z = (x1 / n1 - x2 / n2) / spread
    return round(1 - math.erf(abs(z) / math.sqrt(2)), 4)


def keep_only(*, session: UnitOfWork, actor: Actor, sequence_id: int, index: int, key: str, now: datetime):
    """Make variant `key` the step's only version: its texts become the step's, the variants go."""
    sequence = _sequence(session, actor.clinic_id, sequence_id, for_update=True)
    step = _step_of(sequence, index)
    chosen = next((v for v in step.get("variants") or [] if v["key"] == key), None)
    if chosen is None:
        raise ValidationFailed("key", f"step {index} has no variant {key!r}")
    kept = {k: v for k, v in step.items() if k not in ("variants", *VARIANT_FIELDS)}
    kept.update({k: chosen[k] for k in VARIANT_FIELDS if k in chosen})
    sequence.steps = [*sequence.steps[:index], kept, *sequence.steps[index + 1 :]]
    sequence.updated_at = now
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=sequence.clinic_id,
            actor=actor.ref,
            action="sequence.keep_variant",
            subject_type="sequence",
            subject_id=sequence.id,
            after={"step": index, "variant": key},
            at=now,
        ),
    )
    return sequence
