"""A clinic's sender identity: its own SMS number, Twilio Messaging Service, and email sender domain.

Texts and STOPs to a number or a Service are routed to the clinic it is assigned to, so each is one
clinic's, and never the platform's shared SMS_FROM or FOLLOWUP_WHATSAPP_FROM (or EMAIL_FROM's
domain), which every clinic without its own sends from. The platform operator assigns a number or
Service to a clinic (it must be in the Twilio account the engine sends with, asked of Twilio) and
verifies an email domain for it; the clinic's admin then chooses among what it was assigned. Each
is unique by database index (two clinics at once: the second gets a 409 naming the field). A value
the clinic already holds is not checked again (a settings change that leaves it alone keeps working).
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import AssignedSmsSender, Clinic, VerifiedSenderDomain
from app.domains.auth.senders import twilio_account
from app.platform import roles
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import Conflict, NotFound, ValidationFailed

# The settings field, the column holding the clinic's claim on it.
COLUMNS = {
    "sms_number": "sms_number",
    "sms_messaging_service_sid": "sms_messaging_service_sid",
    "email_from": "email_sender_domain",
}


# What an assigned SMS sender is, and the settings field that names it.
NUMBER, MESSAGING_SERVICE = "number", "messaging_service"
FIELD_OF_KIND = {NUMBER: "sms_number", MESSAGING_SERVICE: "sms_messaging_service_sid"}
SHARED_SENDER = (
    "a shared sender of the platform (SMS_FROM, FOLLOWUP_WHATSAPP_FROM), every clinic's without its "
    "own: never one clinic's"
)
SHARED_EMAIL = "the domain of the platform's shared EMAIL_FROM is no clinic's own"


def sms_kind(sender: str) -> str:
    """A Messaging Service SID starts MG; anything else is a number."""
    return MESSAGING_SERVICE if sender.startswith("MG") else NUMBER


def is_shared_sms(sender: str | None, config) -> bool:
    """Whether `sender` (a number or Messaging Service SID) is the shared SMS_FROM."""
    return bool(sender) and sender == (config.sms_from or "")


def is_shared_sender(sender: str | None, config) -> bool:
    """Whether `sender` is one of the platform's shared senders, SMS_FROM or FOLLOWUP_WHATSAPP_FROM:
    every clinic without its own sends from them, so none is ever one clinic's."""
    return is_shared_sms(sender, config) or (bool(sender) and sender == (config.whatsapp_from or ""))


def email_domain(address: str) -> str:
    return address.rpartition("@")[2].strip().lower().rstrip(".")


def shared_email_domain(config) -> str:
    """The domain of EMAIL_FROM (which may carry a display name): the platform's, no clinic's."""
    return email_domain(parseaddr(config.email_from or "")[1])


def claimed(field: str, value: str | None) -> str | None:
    """What the clinic's column holds for a settings value: the number, the SID, the email's domain."""
    if not value:
        return None
    return email_domain(value) if field == "email_from" else value


def apply(*, session: UnitOfWork, clinic: Clinic, settings_values: dict, config) -> None:
    """Check and take the sender identity the clinic's new settings name; the columns follow them.
    ValidationFailed (422) if it is the shared sender or not assigned (verified) to the clinic,
    Conflict (409) if another clinic holds it."""
    for field, column in COLUMNS.items():
        wanted = claimed(field, settings_values.get(field))
        if wanted == getattr(clinic, column):
            continue
        if wanted is not None:
            _check_control(session, clinic, field, wanted, config)
            _refuse_if_taken(session, clinic, field, wanted)
        setattr(clinic, column, wanted)
    whatsapp = settings_values.get("whatsapp_number")
    if whatsapp and whatsapp != (clinic.settings or {}).get("whatsapp_number"):
        # A Twilio number of the clinic's enabled for WhatsApp: what its WhatsApp goes from and
        # what a family's WhatsApp to it is routed by.
        _check_control(session, clinic, "whatsapp_number", whatsapp, config)
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
        if wanted == shared_email_domain(config):
            raise not_controlled("email_from", SHARED_EMAIL)
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
    if is_shared_sender(wanted, config):
        raise not_controlled(field, SHARED_SENDER)
    assigned = session.scalar(
        sa.select(AssignedSmsSender.id).where(
            AssignedSmsSender.clinic_id == clinic.id,
            AssignedSmsSender.sender == wanted,
            AssignedSmsSender.kind == sms_kind(wanted),
        )
    )
    if assigned is None:
        raise not_controlled(
            field,
            f"{wanted} is not assigned to this clinic (the platform operator assigns numbers and "
            "Messaging Services: GET /api/platform/clinics/<id>/sms-senders)",
        )


# --- the platform operator's SMS senders ---------------------------------------------------------


def assign_sms_sender(*, session: UnitOfWork, clinic_id: int, sender: str, config, now: datetime) -> dict:
    """Assign a number (E.164) or Messaging Service SID of the engine's Twilio account to the clinic
    (idempotent): its admin may then choose it, and texts to it are routed to it. ValidationFailed
    naming `sender` for a shared sender (SMS_FROM, FOLLOWUP_WHATSAPP_FROM) or one outside the
    account; Conflict if another clinic's; TwilioUnavailable (503) if Twilio cannot be asked."""
    clinic = _get_clinic(session, clinic_id)
    if is_shared_sender(sender, config):
        raise ValidationFailed({"sender": [SHARED_SENDER]}, f"sender: {SHARED_SENDER}")
    row = session.scalar(sa.select(AssignedSmsSender).where(AssignedSmsSender.sender == sender))
    if row is not None and row.clinic_id != clinic_id:
        raise _assigned_elsewhere()
    if row is not None:
        return _described(clinic, row)
    kind = sms_kind(sender)
    if twilio_account.can_check(config):  # development's console backend: no account to ask
        holds = (
            twilio_account.holds_messaging_service
            if kind == MESSAGING_SERVICE
            else twilio_account.holds_number
        )
        if not holds(config, sender):
            raise ValidationFailed(
                {"sender": [twilio_account.NOT_OURS]}, f"sender: {twilio_account.NOT_OURS}"
            )
    row = AssignedSmsSender(clinic_id=clinic_id, kind=kind, sender=sender, assigned_at=now)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # assigned at the same moment to a clinic: the unique index decides
        raise _assigned_elsewhere() from None
    _audit(session, clinic_id, "clinic.sms_sender_assigned", {"sender": sender, "kind": kind}, now)
    return _described(clinic, row)


def release_sms_sender(*, session: UnitOfWork, clinic_id: int, sender: str, now: datetime) -> None:
    """Take an assigned sender back from the clinic: if its settings name it, they stop (it sends
    from the shared SMS_FROM again) and texts to it are no longer the clinic's."""
    clinic = _get_clinic(session, clinic_id)
    row = session.scalar(
        sa.select(AssignedSmsSender).where(
            AssignedSmsSender.clinic_id == clinic_id, AssignedSmsSender.sender == sender
        )
    )
    if row is None:
        raise NotFound(
            "this sender is not assigned to the clinic", errors={"json": {"sender": ["not assigned"]}}
        )
    field = FIELD_OF_KIND[row.kind]
    if getattr(clinic, COLUMNS[field]) == sender:
        setattr(clinic, COLUMNS[field], None)
        clinic.settings = {k: v for k, v in (clinic.settings or {}).items() if k != field}
        clinic.updated_at = now
    session.delete(row)
    session.flush()
    _audit(session, clinic_id, "clinic.sms_sender_released", {"sender": sender, "kind": row.kind}, now)


def assigned_sms_senders(*, session: UnitOfWork, clinic_id: int) -> list[dict]:
    """The clinic's assigned senders, each with whether its settings use it now."""
    clinic = _get_clinic(session, clinic_id)
    rows = session.scalars(
        sa.select(AssignedSmsSender)
        .where(AssignedSmsSender.clinic_id == clinic_id)
        .order_by(AssignedSmsSender.sender)
    )
    return [_described(clinic, row) for row in rows]


def _described(clinic: Clinic, row: AssignedSmsSender) -> dict:
    """An assigned sender as the operator reads it, with whether the clinic's settings use it now."""
    in_use = row.sender in (clinic.sms_number, clinic.sms_messaging_service_sid)
    return {
        "clinic_id": row.clinic_id,
        "sender": row.sender,
        "kind": row.kind,
        "assigned_at": row.assigned_at,
        "in_use": in_use,
    }


def assignee(*, session: UnitOfWork, sender: str, kind: str, config) -> Clinic | None:
    """The clinic a number or Messaging Service is assigned to: where a text to it goes. None for
    a shared sender, whatever was ever recorded for it."""
    if not sender or is_shared_sender(sender, config):
        return None
    return session.scalar(
        sa.select(Clinic)
        .join(AssignedSmsSender, AssignedSmsSender.clinic_id == Clinic.id)
        .where(AssignedSmsSender.sender == sender, AssignedSmsSender.kind == kind)
    )


def _get_clinic(session: UnitOfWork, clinic_id: int) -> Clinic:
    clinic = session.get(Clinic, clinic_id)
    if clinic is None:
        raise NotFound("clinic not found", errors={"json": {"clinic_id": ["unknown"]}})
    return clinic


def _assigned_elsewhere() -> Conflict:
    return Conflict(
        "this sender is assigned to another clinic",
        errors={"json": {"sender": ["assigned to another clinic"]}},
        code="name_taken",
    )


def _audit(session: UnitOfWork, clinic_id: int, action: str, after: dict, now: datetime) -> None:
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=clinic_id,
            actor=roles.PLATFORM,
            action=action,
            subject_type="clinic",
            subject_id=clinic_id,
            after=after,
            at=now,
        ),
    )


# --- the platform operator's verified sender domains -------------------------------------------


def verify_domain(
    *, session: UnitOfWork, clinic_id: int, domain: str, config, now: datetime
) -> VerifiedSenderDomain:
    """Record that the platform operator verified `domain` for the clinic (idempotent); Conflict if
    it is verified for another clinic; ValidationFailed for the shared EMAIL_FROM's domain."""
    domain = domain.strip().lower().rstrip(".")
    _get_clinic(session, clinic_id)
    if domain == shared_email_domain(config):
        raise ValidationFailed("domain", SHARED_EMAIL)
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
