"""A clinic's sender identity: its own SMS number, Twilio Messaging Service, and email sender domain.

Texts and STOPs to a number or a Service are routed to the clinic that holds it, so each is one
clinic's: unique by database index (two clinics writing the same one at once: the second gets a
409 naming the field), and set only once the clinic is shown to control it. A number or Service
must be in the Twilio account the engine sends with (asked of Twilio); an email domain must be one
the platform operator verified for this clinic. A value the clinic already holds is not asked
again (a settings change that leaves it alone keeps working while Twilio is down). Without its own,
a clinic sends from the shared SMS_FROM and EMAIL_FROM.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import Clinic, VerifiedSenderDomain
from app.domains.auth.senders import twilio_account
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, ValidationFailed

# The settings field, the column holding the clinic's claim on it.
COLUMNS = {
    "sms_number": "sms_number",
    "sms_messaging_service_sid": "sms_messaging_service_sid",
    "email_from": "email_sender_domain",
}


def email_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def claimed(field: str, value: str | None) -> str | None:
    """What the clinic's column holds for a settings value: the number, the SID, the email's domain."""
    if not value:
        return None
    return email_domain(value) if field == "email_from" else value


def apply(*, session: UnitOfWork, clinic: Clinic, settings_values: dict, config) -> None:
    """Check and take the sender identity the clinic's new settings name; the columns follow them.
    ValidationFailed (422) if the clinic does not control one, Conflict (409) if another clinic holds it."""
    for field, column in COLUMNS.items():
        wanted = claimed(field, settings_values.get(field))
        if wanted == getattr(clinic, column):
            continue
        if wanted is not None:
            _refuse_if_taken(session, clinic, field, wanted)
            _check_control(session, clinic, field, wanted, config)
        setattr(clinic, column, wanted)
    try:
        session.flush()
    except IntegrityError as exc:  # written at once by another clinic: the unique index decides
        field = next((f for f, c in COLUMNS.items() if c in str(exc.orig)), "settings")
        raise _taken(field) from None


def not_controlled(field: str, why: str) -> ValidationFailed:
    """A 422 naming settings.<field>, as the schema's own errors about it are."""
    return ValidationFailed({"settings": {field: [why]}}, f"settings.{field}: {why}")


def _taken(field: str) -> Conflict:
    return Conflict(
        f"settings.{field}: another clinic already sends from this {_what(field)}",
        errors={"json": {"settings": {field: ["taken by another clinic"]}}},
        code="name_taken",
    )


def _what(field: str) -> str:
    return {"sms_number": "number", "sms_messaging_service_sid": "Messaging Service"}.get(field, "domain")


def _refuse_if_taken(session: UnitOfWork, clinic: Clinic, field: str, wanted: str) -> None:
    column = getattr(Clinic, COLUMNS[field])
    other = session.scalar(sa.select(Clinic.id).where(column == wanted, Clinic.id != clinic.id))
    if other is not None:
        raise _taken(field)


def _check_control(session: UnitOfWork, clinic: Clinic, field: str, wanted: str, config) -> None:
    if field == "email_from":
        verified = session.scalar(
            sa.select(VerifiedSenderDomain.id).where(
                VerifiedSenderDomain.clinic_id == clinic.id, VerifiedSenderDomain.domain == wanted
            )
        )
        if verified is None:
            raise not_controlled(
                "email_from",
                f"the domain {wanted} is not verified for this clinic (the platform operator verifies "
                "sender domains)",
            )
        return
    if not twilio_account.can_check(config):
        return  # development's console backend: no account to ask, nothing leaves the machine
    if field == "sms_number":
        twilio_account.check_number(config, wanted)
    else:
        twilio_account.check_messaging_service(config, wanted)


# --- the platform operator's verified sender domains -------------------------------------------


def verify_domain(*, session: UnitOfWork, clinic_id: int, domain: str, now: datetime) -> VerifiedSenderDomain:
    """Record that the platform operator verified `domain` for the clinic (idempotent); Conflict if
    it is verified for another clinic."""
    domain = domain.strip().lower().rstrip(".")
    if session.get(Clinic, clinic_id) is None:
        raise NotFound("clinic not found", errors={"json": {"clinic_id": ["unknown"]}})
    row = session.scalar(sa.select(VerifiedSenderDomain).where(VerifiedSenderDomain.domain == domain))
    if row is not None and row.clinic_id != clinic_id:
        raise Conflict(
            "this domain is verified for another clinic",
            errors={"json": {"domain": ["verified for another clinic"]}},
            code="name_taken",
        )
    if row is None:
        row = VerifiedSenderDomain(clinic_id=clinic_id, domain=domain, verified_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
        except IntegrityError:
            raise Conflict(
                "this domain was just verified for a clinic",
                errors={"json": {"domain": ["taken"]}},
                code="name_taken",
            ) from None
    return row


def verified_domains(*, session: UnitOfWork, clinic_id: int) -> list[VerifiedSenderDomain]:
    stmt = sa.select(VerifiedSenderDomain).where(VerifiedSenderDomain.clinic_id == clinic_id)
    return list(session.scalars(stmt.order_by(VerifiedSenderDomain.domain)))
