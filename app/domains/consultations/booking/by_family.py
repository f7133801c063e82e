"""The family books its own consultation (the clinic's booking page, issue 62): the same booking as
staff's, by the engine on the family's behalf, counted as self-booked in the reports."""

from __future__ import annotations

from datetime import datetime

from app.domains.consultations.models import BookedVia, Consultation
from app.domains.consultations.service import Booking, book
from app.platform.db import UnitOfWork
from app.platform.roles import Actor

FAMILY = "booking_page"  # the engine's actor when a family books on the clinic's page


def book_by_family(
    *, session: UnitOfWork, clinic_id: int, lead_id: int, booking: Booking, now: datetime
) -> Consultation:
    actor = Actor.engine(clinic_id, FAMILY)
    family_booking = Booking(**{**booking.__dict__, "booked_via": BookedVia.SELF})
    return book(session=session, actor=actor, lead_id=lead_id, booking=family_booking, now=now)
