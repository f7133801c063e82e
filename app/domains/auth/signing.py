"""The HMACs the engine checks or makes, below every domain that receives a signed request or
hands out a signed link, so none of them imports another for it. Pure: no I/O, no clock (`now`
and the request are passed in).

- Requests an integration signs: with one of the clinic's signing secrets
  (app/domains/auth/signing_secrets/), named by X-Followup-Key-Id, over
  f"{timestamp}.{METHOD}.{path}.{body}"; or, for web forms only until the clinic retires it, with
  the clinic's single webhook secret over f"{timestamp}.{body}". HMAC-SHA256, hex.
- Twilio's X-Twilio-Signature on its webhooks, checked with Twilio's own validator.
- A lead's unsubscribe and reply-address tokens: its id and an HMAC of it under SECRET_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime
from enum import StrEnum

from twilio.request_validator import RequestValidator

from app.platform.db import MAX_ID
from app.platform.errors import NotFound, Unauthorized

CLINIC_HEADER = "X-Followup-Clinic"
TIMESTAMP_HEADER = "X-Followup-Timestamp"
SIGNATURE_HEADER = "X-Followup-Signature"
KEY_ID_HEADER = "X-Followup-Key-Id"


class Scope(StrEnum):
    """The endpoints a signing secret may call: one integration, one door."""

    WEB_FORM = "web_form"  # POST /api/capture/web-form: the clinic's website
    INBOUND = "inbound"  # POST /api/capture/inbound: a messaging relay's replies and STOPs
    CALL = "call"  # POST /api/capture/call: the phone system's caller ID
    APPOINTMENT = "appointment"  # POST /api/capture/appointment: the booking system


# A signed request is accepted this long either side of its timestamp; a seen signature is
# remembered a little longer than the whole window, so it cannot come back while still fresh.
SIGNATURE_TOLERANCE_SECONDS = 300
REPLAY_MEMORY_SECONDS = 2 * SIGNATURE_TOLERANCE_SECONDS + 60


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The hex HMAC-SHA256 of f"{timestamp}.{raw_body}" under the clinic's webhook secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def sign_request(secret: str, *, timestamp: str, method: str, path: str, raw_body: bytes) -> str:
    """The hex HMAC-SHA256 of f"{timestamp}.{METHOD}.{path}.{raw_body}" under a signing secret: the
    method and path are covered, so a signature made for one endpoint is refused on another."""
    signed = f"{timestamp}.{method.upper()}.{path}.".encode() + raw_body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def given_digest(given: str) -> str:
    """A signature header as compared: blanks and a "sha256=" prefix (GitHub-style senders add it) dropped."""
    return given.strip().removeprefix("sha256=").lower()


def digests_match(expected: str, given: str) -> bool:
    """Constant-time comparison of a computed hex digest with a signature header.

    Compared as bytes: a header may carry any character, and compare_digest refuses a str that is
    not ASCII (a TypeError, not a mismatch)."""
    return hmac.compare_digest(expected.encode(), given_digest(given).encode("utf-8", "replace"))


def signature_matches(secret: str, timestamp: str, raw_body: bytes, given: str) -> bool:
    """The clinic's single web-form secret's signature (f"{timestamp}.{body}"), compared in constant time."""
    return digests_match(sign(secret, timestamp, raw_body), given)


def timestamp_fresh(timestamp: str, now: datetime) -> bool:
    """True when the unix-seconds timestamp is within the tolerance of `now`."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    return abs(now.timestamp() - sent) <= SIGNATURE_TOLERANCE_SECONDS


def twilio_signature_valid(*, auth_token: str, urls: list[str], params: dict, signature: str | None) -> bool:
    """Twilio's X-Twilio-Signature (HMAC-SHA1 over the URL and the sorted form fields, keyed by the
    account's auth token), checked with Twilio's own validator. Behind a proxy the URL Twilio
    called differs from the one Flask sees, so each candidate (the public one among them) is tried."""
    if not (auth_token and signature):
        return False
    validator = RequestValidator(auth_token)
    return any(validator.validate(url, params, signature) for url in urls)


def twilio_urls(*, request_url: str, public_base_url: str | None, full_path: str) -> list[str]:
    """The URLs Twilio may have signed: the one the request reached, and the same path under the
    public base URL (what Twilio was given when a proxy or load balancer sits in front)."""
    urls = [request_url]
    if public_base_url:
        urls.append(public_base_url.rstrip("/") + full_path.rstrip("?"))
    return urls


def verify_twilio(*, settings, request_url: str, full_path: str, params: dict, signature: str | None) -> None:
    """A request Twilio signed with the account's auth token (SMS_TOKEN), else 401 (404 when no
    token is configured: there is no Twilio account to check against)."""
    if not settings.sms_token:
        raise NotFound("Twilio webhooks are not configured (SMS_TOKEN)")
    urls = twilio_urls(request_url=request_url, public_base_url=settings.public_base_url, full_path=full_path)
    if not twilio_signature_valid(
        auth_token=settings.sms_token, urls=urls, params=params, signature=signature
    ):
        raise Unauthorized("missing or bad X-Twilio-Signature")


def twilio_form(*, settings, request) -> dict:
    """The form of a request Twilio posted (a Flask request), once its signature is verified."""
    form = request.form.to_dict()
    verify_twilio(
        settings=settings,
        request_url=request.url,
        full_path=request.full_path,
        params=form,
        signature=request.headers.get("X-Twilio-Signature"),
    )
    return form


def unsubscribe_token(secret: str, lead_id: int, purpose: str = "unsubscribe") -> str:
    """The token of a lead's one-click unsubscribe URL (or, `purpose` "reply", its reply address): its
    id and an HMAC of it under SECRET_KEY, so it needs no login and cannot be guessed for another lead."""
    mac = hmac.new(secret.encode(), f"{purpose}:{lead_id}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{lead_id}.{mac}"


# What unsubscribe_token makes, in ASCII only: str.isdigit() alone also takes "²" (which int() refuses),
# and compare_digest refuses a str that is not ASCII.
_TOKEN = re.compile(r"([0-9]{1,10})\.[0-9a-f]{32}", re.ASCII | re.IGNORECASE)


def lead_of_unsubscribe_token(secret: str, token: str, purpose: str = "unsubscribe") -> int | None:
    """The lead id a token was made for, or None when it is not one of ours."""
    shape = _TOKEN.fullmatch(token)
    if shape is None:
        return None
    lead_id = int(shape.group(1))
    if lead_id > MAX_ID:  # no lead has it, and the database's integer cannot even hold it
        return None
    expected = unsubscribe_token(secret, lead_id, purpose)
    return lead_id if hmac.compare_digest(expected, token.lower()) else None
