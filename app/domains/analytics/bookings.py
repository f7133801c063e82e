"""The booking report: how consultations are booked, and how soon after capture.

Counted over the clinic's consultations booked (created) in the range, narrowed by the lead's owner
and source like every report:
- by way: staff (a person or an API key through the API), webhook (the practice-management or
  booking system), self (the family, on the clinic's booking page), each with its share;
- time to booking: for each lead whose first consultation was booked in the range, the hours from
  its capture to that first booking; median and p90, overall and by the first booking's way.
The show rate by way is in the consultations report (`by.booked_via`), over the consultations that
started in the range like its other groups.
- booking-link conversion: messages sent with a lead's booking link in the range, the leads they
  went to, how many of those leads then booked through their link (at or after the range's first
  link to them), and consultations booked through a link in the range.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.analytics.figures import Cohort, percentiles, period, ratio, seconds
from app.domains.consultations.models import BookedVia, Consultation
from app.domains.lead_messages.models import BookingLinkEvent
from app.domains.leads.models import Lead
from app.platform.db import UnitOfWork

WAYS = tuple(way.value for way in BookedVia)
OVERALL = "all"


def _narrowed(stmt, cohort: Cohort):
    """`stmt` (joined to Lead) narrowed to the cohort's owner and source, deleted leads left out."""
    stmt = stmt.where(Lead.deleted_at.is_(None))
    if cohort.coordinator_id is not None:
        stmt = stmt.where(Lead.assigned_to_id == cohort.coordinator_id)
    if cohort.source_id is not None:
        stmt = stmt.where(Lead.source_id == cohort.source_id)
    return stmt


def _booked_by_way(session: UnitOfWork, cohort: Cohort) -> dict[str, int]:
    """How many consultations were booked in the range, by way (cancelled ones too: they were booked)."""
    stmt = (
        sa.select(Consultation.booked_via, sa.func.count())
        .join(Lead, Lead.id == Consultation.lead_id)
        .where(
            Consultation.clinic_id == cohort.clinic_id,
            Consultation.created_at >= cohort.start,
            Consultation.created_at < cohort.end,
        )
        .group_by(Consultation.booked_via)
    )
    return dict(session.execute(_narrowed(stmt, cohort)).all())


def _first_bookings(session: UnitOfWork, cohort: Cohort):
    """(way, hours from capture) of each lead whose first consultation was booked in the range."""
    ranked = (
        sa.select(
            Consultation.lead_id,
            Consultation.booked_via,
            Consultation.created_at,
            sa.func.row_number()
            .over(partition_by=Consultation.lead_id, order_by=(Consultation.created_at, Consultation.id))
            .label("nth"),
        )
        .where(Consultation.clinic_id == cohort.clinic_id)
        .subquery()
    )
    hours = seconds(session, ranked.c.created_at, Lead.created_at) / 3600.0
    stmt = (
        sa.select(ranked.c.booked_via.label("way"), hours.label("hours"))
        .join(Lead, Lead.id == ranked.c.lead_id)
        .where(ranked.c.nth == 1, ranked.c.created_at >= cohort.start, ranked.c.created_at < cohort.end)
    )
    return _narrowed(stmt, cohort).subquery()


def _link_conversion(session: UnitOfWork, cohort: Cohort) -> dict:
    """Booking links sent in the range (messages, leads) against bookings through them."""
    events = BookingLinkEvent
    in_range = (events.clinic_id == cohort.clinic_id, events.at >= cohort.start, events.at < cohort.end)
    sent = (
        sa.select(events.lead_id, sa.func.min(events.at).label("first_at"), sa.func.count().label("messages"))
        .join(Lead, Lead.id == events.lead_id)
        .where(*in_range, events.kind == events.SENT)
        .group_by(events.lead_id)
    )
    sent = _narrowed(sent, cohort).subquery()
    later = sa.orm.aliased(BookingLinkEvent)
    booked_later = (
        sa.exists()
        .where(later.lead_id == sent.c.lead_id, later.kind == events.BOOKED, later.at >= sent.c.first_at)
        .correlate(sent)
    )
    messages, leads, converted = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(sent.c.messages), 0),
            sa.func.count(),
            sa.func.count().filter(booked_later),
        ).select_from(sent)
    ).one()
    booked = session.scalar(
        _narrowed(
            sa.select(sa.func.count())
            .select_from(events)
            .join(Lead, Lead.id == events.lead_id)
            .where(*in_range, events.kind == events.BOOKED),
            cohort,
        )
    )
    return {
        "messages_sent": int(messages),
        "leads_sent": leads,
        "leads_booked": converted,
        "conversion": ratio(converted, leads),
        "booked_through_link": booked or 0,
    }


def bookings(*, session: UnitOfWork, cohort: Cohort, now=None) -> dict:
    """Consultations booked in the range by way (staff, webhook, self) and the hours from capture to
    a lead's first booking (median, p90), overall and by way."""
    booked = _booked_by_way(session, cohort)
    firsts = _first_bookings(session, cohort)
    overall = percentiles(session, firsts, firsts.c.hours).get(0, (None, None))
    by_way = percentiles(session, firsts, firsts.c.hours, firsts.c.way)
    first_counts = dict(
        session.execute(sa.select(firsts.c.way, sa.func.count()).group_by(firsts.c.way)).all()
    )
    total = sum(booked.values())
    rows = [
        {
            "booked_via": way,
            "booked": booked.get(way, 0),
            "share": ratio(booked.get(way, 0), total),
            "first_bookings": first_counts.get(way, 0),
            "median_hours_to_booking": by_way.get(way, (None, None))[0],
            "p90_hours_to_booking": by_way.get(way, (None, None))[1],
        }
        for way in WAYS
    ]
    return {
        **period(cohort.start, cohort.end, coordinator_id=cohort.coordinator_id, source_id=cohort.source_id),
        "booked": total,
        "self_booked": booked.get(BookedVia.SELF.value, 0),
        "staff_booked": booked.get(BookedVia.STAFF.value, 0),
        "webhook_booked": booked.get(BookedVia.WEBHOOK.value, 0),
        "time_to_booking": {
            "first_bookings": sum(first_counts.values()),
            "median_hours": overall[0],
            "p90_hours": overall[1],
        },
        "booking_link": _link_conversion(session, cohort),
        # One per way: the CSV's rows.
        "rows": rows,
    }


REPORTS = {"bookings": bookings}
