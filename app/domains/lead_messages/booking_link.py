"""The booking page's links in messages (itsdangerous under SECRET_KEY, absolute from the public base
URL, each kind with its own salt so one is never taken for another):
- `{{ booking_link }}`: the clinic's booking page signed for the lead, valid LINK_LIFETIME;
- `{{ consultation_link }}` (a consultation's confirmation): the page to move or cancel that visit.
Neither names anybody in the clear, and the page shows nothing of the lead (app/domains/booking_page/)."""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from app.domains.lead_messages.models import BookingLinkEvent
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound

LINK_LIFETIME = timedelta(days=60)
CHANGE_LIFETIME = timedelta(days=400)  # a visit is booked at most a horizon (365 days) ahead
LINK_PATH, CHANGE_PATH = "/book/l/", "/book/c/"
_SALT, _CHANGE_SALT = "booking-link", "booking-change"


def _serializer(secret: str, salt: str = _SALT) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


def _claims(secret: str, salt: str, token: str, now: datetime, what: str) -> dict:
    try:
        claims = _serializer(secret, salt).loads(token)
    except BadData:
        raise NotFound(f"this {what} is not valid") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("e"), int):
        raise NotFound(f"this {what} is not valid")
    if now.timestamp() > claims["e"]:
        raise NotFound(f"this {what} has expired: ask the clinic for a new one")
    return claims


def lead_token(secret: str, clinic_id: int, lead_id: int, now: datetime) -> str:
    expires = int((now + LINK_LIFETIME).timestamp())
    return _serializer(secret).dumps({"c": clinic_id, "l": lead_id, "e": expires})


def booking_url(settings, clinic_id: int, lead_id: int, now: datetime) -> str:
    """The lead's absolute booking link; empty without a SECRET_KEY (nothing to sign with)."""
    if not settings.secret_key:
        return ""
    token = lead_token(settings.secret_key, clinic_id, lead_id, now)
    return f"{settings.public_base_url.rstrip('/')}{LINK_PATH}{token}"


def lead_of(secret: str, token: str, now: datetime) -> tuple[int, int]:
    """(clinic_id, lead_id) of a lead's booking link; a NotFound when forged or expired."""
    claims = _claims(secret, _SALT, token, now, "booking link")
    return int(claims["c"]), int(claims["l"])


def change_token(secret: str, clinic_id: int, consultation_id: int, now: datetime) -> str:
    expires = int((now + CHANGE_LIFETIME).timestamp())
    return _serializer(secret, _CHANGE_SALT).dumps({"c": clinic_id, "k": consultation_id, "e": expires})


def change_url(settings, clinic_id: int, consultation_id: int, now: datetime) -> str:
    """The consultation's absolute move-or-cancel link; empty without a SECRET_KEY."""
    if not settings.secret_key:
        return ""
    token = change_token(settings.secret_key, clinic_id, consultation_id, now)
    return f"{settings.public_base_url.rstrip('/')}{CHANGE_PATH}{token}"


def consultation_of(secret: str, token: str, now: datetime) -> tuple[int, int]:
    """(clinic_id, consultation_id) of a confirmation's change link."""
    claims = _claims(secret, _CHANGE_SALT, token, now, "link")
    return int(claims["c"]), int(claims["k"])


def record(session: UnitOfWork, subject, kind: str, now: datetime) -> None:
    """A booking link sent to a lead (`subject`: the lead), or a booking made through it (the
    consultation): the bookings report's conversion."""
    lead_id = subject.lead_id if kind == BookingLinkEvent.BOOKED else subject.id
    session.add(BookingLinkEvent(clinic_id=subject.clinic_id, lead_id=lead_id, kind=kind, at=now))
