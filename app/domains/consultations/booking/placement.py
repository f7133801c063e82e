"""Where a consultation sits on its provider's time: its provider (named, matched by name from a
practice-management system, or the first of its type's providers free then), its end and the time
it holds (the end plus the buffer), and the write that holds it.

No two scheduled consultations of one provider overlap, whatever booked them: a check before the
write gives the clash at once, and the database refuses the second of two concurrent writes (an
exclusion constraint on PostgreSQL, a trigger inside SQLite's single writer lock: migration 0051).
The loser gets a 409 naming the consultation it clashes with (its time and provider, nothing of
the other family) and the nearest free slots. A clinic may let its practice-management system win:
its booking is stored over the other, outside the rule, and the clash recorded for staff.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.availability import service as availability
from app.domains.availability.models import BookingClash, ConsultationType
from app.domains.consultations.booking import search
from app.domains.consultations.models import BookedVia, Consultation, ConsultationStatus
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, ValidationFailed

PRACTICE_SYSTEM = "booking_system"  # the actor ref of the signed appointment webhook
NO_OVERLAP = "consultations_no_overlap"  # the constraint's (and the SQLite trigger's) name
ALTERNATIVES = 5


class SlotTaken(Conflict):
    code = "slot_taken"


def resolve(session: UnitOfWork, clinic_id: int, booking, starts_at: datetime):
    """The booking with its type's length, its provider (checked, or chosen: the first of the
    type's providers free then) and that provider's name; unchanged when it names neither."""
    kind = (
        availability.get_type(session=session, clinic_id=clinic_id, type_id=booking.type_id)
        if booking.type_id
        else None
    )
    duration = booking.duration_minutes or (kind.duration_minutes if kind else None)
    provider_id = booking.provider_id
    if provider_id is None and kind is None and booking.booked_via == BookedVia.WEBHOOK:
        named = availability.provider_named(session, clinic_id, booking.provider_name)
        provider_id = named.id if named else None
    if provider_id is None and kind is None:
        return booking  # booked by name only: it holds nobody's time
    buffer = availability.slot_rules(availability.settings_of(session, clinic_id), kind, duration or 0).buffer
    if provider_id is not None:
        provider = availability.get_provider(session=session, clinic_id=clinic_id, provider_id=provider_id)
        if kind is not None and provider.id not in kind.provider_ids:
            raise ValidationFailed(
                "provider_id", f"provider {provider.id} does not take this consultation type"
            )
    else:
        provider = _first_free(session, kind, starts_at, timedelta(minutes=duration) + buffer)
    return dataclasses.replace(
        booking,
        duration_minutes=duration,
        provider_id=provider.id,
        provider_name=booking.provider_name or provider.name,
        buffer_minutes=int(buffer.total_seconds() // 60),
    )


def provider_of(session: UnitOfWork, clinic_id: int, provider_id: int | None, name: str | None):
    """The provider a practice-management event names, by id (another clinic's is not found) or by
    name; None when it names neither."""
    if provider_id is not None:
        return availability.get_provider(session=session, clinic_id=clinic_id, provider_id=provider_id)
    return availability.provider_named(session, clinic_id, name)


def buffer_for(session: UnitOfWork, consultation: Consultation) -> int:
    """The buffer the consultation keeps: its own, or (a provider newly named) its type's or the clinic's."""
    if consultation.blocked_until is not None:
        return buffer_of(consultation)
    kind = session.get(ConsultationType, consultation.type_id) if consultation.type_id else None
    settings = availability.settings_of(session, consultation.clinic_id)
    return int(availability.slot_rules(settings, kind, 0).buffer.total_seconds() // 60)


def _first_free(session: UnitOfWork, kind: ConsultationType, starts_at: datetime, held_for: timedelta):
    """The first of the type's providers with nothing held over the visit and its buffer (else the
    first: the hold then answers the clash with alternatives)."""
    providers = [
        availability.get_provider(session=session, clinic_id=kind.clinic_id, provider_id=pid)
        for pid in kind.provider_ids
    ]
    providers = [p for p in providers if p.active]
    if not providers:
        raise ValidationFailed("type_id", "the consultation type has no active provider")
    ends = starts_at + held_for
    busy = {pid for pid, _, _ in search.held(session, [p.id for p in providers], starts_at, ends)}
    return next((p for p in providers if p.id not in busy), providers[0])


def place(consultation: Consultation, buffer_minutes: int) -> None:
    """The consultation's end and the time it holds, from its start, length and buffer."""
    if consultation.provider_id is None:
        consultation.ends_at = consultation.blocked_until = None
        return
    consultation.ends_at = consultation.starts_at + timedelta(minutes=consultation.duration_minutes)
    consultation.blocked_until = consultation.ends_at + timedelta(minutes=buffer_minutes)


def buffer_of(consultation: Consultation) -> int:
    if consultation.ends_at is None or consultation.blocked_until is None:
        return 0
    return int((consultation.blocked_until - consultation.ends_at).total_seconds() // 60)


@dataclasses.dataclass(frozen=True)
class Wanted:
    """The time a consultation asks of its provider (kept aside: a rolled-back savepoint expires
    the row's attributes)."""

    id: int | None
    clinic_id: int
    provider_id: int
    type_id: int | None
    starts_at: datetime
    duration_minutes: int
    blocked_until: datetime

    @classmethod
    def of(cls, c: Consultation) -> Wanted:
        return cls(
            c.id, c.clinic_id, c.provider_id, c.type_id, c.starts_at, c.duration_minutes, c.blocked_until
        )


def hold(
    session: UnitOfWork, consultation: Consultation, *, practice_system: bool, now: datetime
) -> Consultation:
    """Write the consultation (a new one, or its changed time) so that it holds its provider's time:
    a clash is a SlotTaken, or, from a practice-management system the clinic lets win, stored over
    the other and recorded."""
    if consultation.provider_id is None or consultation.status != ConsultationStatus.SCHEDULED:
        return _write(session, consultation)
    wanted = Wanted.of(consultation)
    clash = clash_of(session, wanted)
    if clash is None:
        try:
            with session.begin_nested():
                return _write(session, consultation)
        except sa.exc.IntegrityError as error:
            if NO_OVERLAP not in str(error.orig):
                raise
        clash = clash_of(session, wanted)  # the concurrent winner, committed by now
    if (
        clash is not None
        and practice_system
        and availability.settings_of(session, wanted.clinic_id).webhook_wins
    ):
        consultation.overlap_allowed = True
        _write(session, consultation)
        _record(session, consultation, clash, now)
        return consultation
    with session.no_autoflush:  # the refused change is never written
        raise _taken(session, wanted, clash, now)


def _write(session: UnitOfWork, consultation: Consultation) -> Consultation:
    if consultation.id is None:
        return session.add(consultation, with_id=True)
    session.flush()
    return consultation


def clash_of(session: UnitOfWork, wanted: Wanted) -> Consultation | None:
    """The earliest scheduled consultation of the provider overlapping the time asked."""
    stmt = sa.select(Consultation).where(
        Consultation.provider_id == wanted.provider_id,
        Consultation.status == ConsultationStatus.SCHEDULED,
        Consultation.starts_at < wanted.blocked_until,
        Consultation.blocked_until > wanted.starts_at,
    )
    if wanted.id is not None:
        stmt = stmt.where(Consultation.id != wanted.id)
    with session.no_autoflush:  # a changed row is written by the hold, in its savepoint
        return session.scalar(stmt.order_by(Consultation.starts_at).limit(1))


def _record(session: UnitOfWork, consultation: Consultation, clash: Consultation, now: datetime) -> None:
    session.add(
        BookingClash(
            clinic_id=consultation.clinic_id,
            consultation_id=consultation.id,
            clashes_with_id=clash.id,
            provider_id=consultation.provider_id,
            starts_at=consultation.starts_at,
            ends_at=consultation.ends_at,
            created_at=now,
        )
    )


def _taken(session: UnitOfWork, wanted: Wanted, clash: Consultation | None, now: datetime) -> SlotTaken:
    kind = session.get(ConsultationType, wanted.type_id) if wanted.type_id else None
    slots = search.nearest_free(session=session, consultation=wanted, kind=kind, now=now, count=ALTERNATIVES)
    alternatives = [
        {
            "starts_at": slot.starts_at.isoformat(),
            "ends_at": slot.ends_at.isoformat(),
            "local_starts_at": slot.local_starts_at.isoformat(),
            "provider_ids": list(slot.provider_ids),
        }
        for slot in slots
    ]
    if clash is None:  # the concurrent winner was cancelled in between: the time is free again
        return SlotTaken(
            "the slot was taken at the same moment: try again", errors={"alternatives": alternatives}
        )
    return SlotTaken(
        f"the provider is booked from {clash.starts_at.isoformat()} to {clash.ends_at.isoformat()}",
        errors={
            "clash": {
                "consultation_id": clash.id,
                "provider_id": clash.provider_id,
                "starts_at": clash.starts_at.isoformat(),
                "ends_at": clash.ends_at.isoformat(),
            },
            "alternatives": alternatives,
        },
    )
