"""The booking page's signed tokens (itsdangerous under SECRET_KEY, each kind with its own salt so
one is never taken for another). Pure: the secret and `now` are passed in.

- a lead's link (`{{ booking_link }}`): app/domains/lead_messages/booking_link.py (merged in messages,
  below this domain);
- a consultation's change link (the confirmation's): the clinic and the consultation;
- a form's render stamp: when the page was drawn and a one-off id (the capture's submission id), so a
  submit faster than a person or from a page left open too long is refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from app.platform.errors import NotFound, ValidationFailed

CHANGE_LIFETIME = timedelta(days=400)  # a visit is booked at most a horizon ahead
FASTEST_SUBMIT = timedelta(seconds=3)  # a person reads the page and types; a bot posts at once
FORM_LIFETIME = timedelta(hours=1)
_CHANGE, _FORM = "booking-change", "booking-form"


def _serializer(secret: str, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


def read(secret: str, salt: str, token: str, what: str) -> dict:
    try:
        claims = _serializer(secret, salt).loads(token)
    except BadData:
        raise NotFound(f"this {what} is not valid") from None
    if not isinstance(claims, dict):
        raise NotFound(f"this {what} is not valid")
    return claims


def unexpired(claims: dict, now: datetime, what: str) -> dict:
    if not isinstance(claims.get("e"), int) or now.timestamp() > claims["e"]:
        raise NotFound(f"this {what} has expired: ask the clinic for a new one")
    return claims


def change_token(secret: str, clinic_id: int, consultation_id: int, now: datetime) -> str:
    expires = int((now + CHANGE_LIFETIME).timestamp())
    return _serializer(secret, _CHANGE).dumps({"c": clinic_id, "k": consultation_id, "e": expires})


def consultation_of(secret: str, token: str, now: datetime) -> tuple[int, int]:
    """(clinic_id, consultation_id) of a confirmation's change link."""
    claims = unexpired(read(secret, _CHANGE, token, "link"), now, "link")
    return int(claims["c"]), int(claims["k"])


@dataclass(frozen=True)
class FormStamp:
    clinic_id: int
    drawn_at: datetime
    submission_id: str


def form_token(secret: str, clinic_id: int, now: datetime) -> str:
    stamp = {"c": clinic_id, "t": now.timestamp(), "n": secrets.token_urlsafe(12)}
    return _serializer(secret, _FORM).dumps(stamp)


def checked_form(secret: str, token: str, clinic_id: int, now: datetime) -> FormStamp:
    """The form's stamp, refused (a 422 naming why) when forged, for another clinic's page, posted
    faster than a person could, or drawn too long ago."""
    try:
        claims = _serializer(secret, _FORM).loads(token or "")
    except BadData:
        raise ValidationFailed("form", "this form is not valid: reload the page and try again") from None
    if not isinstance(claims, dict) or claims.get("c") != clinic_id:
        raise ValidationFailed("form", "this form is not valid: reload the page and try again")
    drawn = datetime.fromtimestamp(float(claims["t"]), tz=now.tzinfo)
    if now - drawn < FASTEST_SUBMIT:
        raise ValidationFailed("form", "that was faster than a person types: wait a moment and send again")
    if now - drawn > FORM_LIFETIME:
        raise ValidationFailed("form", "the page was open too long: reload it and choose again")
    return FormStamp(clinic_id, drawn, str(claims["n"]))
