"""A lead's booking link (`{{ booking_link }}` in a message): the clinic's booking page signed for
the lead (itsdangerous under SECRET_KEY), absolute from the public base URL, valid LINK_LIFETIME.
It names nobody in the clear: the page shows nothing of the lead (app/domains/booking_page/)."""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeSerializer

from app.platform.errors import NotFound

LINK_LIFETIME = timedelta(days=60)
LINK_PATH = "/book/l/"
_SALT = "booking-link"


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=_SALT)


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
    try:
        claims = _serializer(secret).loads(token)
    except BadData:
        raise NotFound("this booking link is not valid") from None
    if not isinstance(claims, dict) or not isinstance(claims.get("e"), int):
        raise NotFound("this booking link is not valid")
    if now.timestamp() > claims["e"]:
        raise NotFound("this booking link has expired: ask the clinic for a new one")
    return int(claims["c"]), int(claims["l"])
