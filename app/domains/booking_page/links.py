"""The booking page's signed tokens (itsdangerous under SECRET_KEY, each kind with its own salt so
one is never taken for another). Pure: the secret and `now` are passed in.

- a lead's link (`{{ booking_link }}`) and a consultation's change link (`{{ consultation_link }}`, the
  confirmation's): app/domains/lead_messages/booking_link.py (merged into messages, below this domain);
- a form's render stamp: when the page was drawn and a one-off id (the capture's submission id), so a
  submit faster than a person or from a page left open too long is refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from app.platform.errors import ValidationFailed

FASTEST_SUBMIT = timedelta(seconds=3)  # a person reads the page and types; a bot posts at once
FORM_LIFETIME = timedelta(hours=1)
_FORM = "booking-form"


def _serializer(secret: str, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=salt)


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
