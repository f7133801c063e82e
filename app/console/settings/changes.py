"""What the settings pages' forms change, each through the API's own request schema (the same
validation, the same field names in its errors) and the API's own use case: PUT /api/clinic,
POST/PUT /api/users, POST /api/users/:id/invitation, POST/PUT /api/availability/providers and
/api/availability/types, POST/PUT /api/lead-sources, POST/PUT/DELETE /api/message-templates,
PUT/DELETE /api/integrations/instagram, POST/DELETE /api/signing-secrets (and its rotation),
POST/DELETE /api/webhooks."""

from __future__ import annotations

from datetime import timedelta

from marshmallow import ValidationError

from app.console import wording
from app.console.settings import hours
from app.console.workspace.form_input import load, text_fields
from app.console.workspace.lead_actions import Change
from app.domains.auth import clinic_schemas, onboarding
from app.domains.auth import schemas as auth_schemas
from app.domains.auth import service as auth
from app.domains.auth.instagram import graph
from app.domains.auth.instagram import schemas as instagram_schemas
from app.domains.auth.instagram import service as instagram
from app.domains.auth.senders import identity as sender_identity
from app.domains.auth.signing import Scope
from app.domains.auth.signing_secrets import schemas as secret_schemas
from app.domains.auth.signing_secrets import service as signing_secrets
from app.domains.availability import schemas as availability_schemas
from app.domains.availability import service as availability
from app.domains.business_hours.rules import EXCEPTIONS
from app.domains.lead_messages import schemas as message_schemas
from app.domains.lead_messages import templates as message_templates
from app.domains.lead_messages.models import EMAIL
from app.domains.leads import schemas as lead_schemas
from app.domains.leads import sources
from app.domains.webhooks import schemas as webhook_schemas
from app.domains.webhooks import service as webhooks
from app.platform.errors import DomainError, NotFound, ValidationFailed

PROFILE_FIELDS = ("name", "timezone", "holiday_country", "default_phone_region")
PROVIDER_HOURS = "hours-"  # the prefix of a new provider's week grid fields


def _update_clinic(session, change: Change, data: dict, config):
    body = load(clinic_schemas.ClinicUpdateIn(), data)
    return auth.update_clinic(
        session=session, actor=change.actor, changes=body, now=change.now, config=config
    )


def save_profile(*, session, change: Change, config):
    """The clinic's name, timezone, holidays and week of hours (its dated exceptions kept)."""
    clinic = auth.get_clinic(session=session, clinic_id=change.actor.clinic_id)
    data = text_fields(change.posted, PROFILE_FIELDS)
    if "holiday_country" not in data:
        data["holiday_country"] = None  # emptied: no public holidays
    else:
        data["holiday_country"] = data["holiday_country"].upper()
    week = hours.week_from_form(change.posted)
    data["business_hours"] = hours.with_exceptions(week, clinic.business_hours or {})
    return _update_clinic(session, change, data, config)


def add_special_day(*, session, change: Change, config):
    """A dated exception: closed all day (no times), or open only from..to."""
    clinic = auth.get_clinic(session=session, clinic_id=change.actor.clinic_id)
    day = (change.posted.get("date") or "").strip()
    if not day:
        raise ValidationFailed("date", "give the day (YYYY-MM-DD)")
    opens, closes = ((change.posted.get(k) or "").strip() for k in ("opens", "closes"))
    current = dict(clinic.business_hours or {})
    special = dict(current.get(EXCEPTIONS) or {})
    special[day] = [[opens, closes]] if (opens or closes) else []
    return _update_clinic(session, change, {"business_hours": {**current, EXCEPTIONS: special}}, config)


def remove_special_day(*, session, change: Change, config):
    clinic = auth.get_clinic(session=session, clinic_id=change.actor.clinic_id)
    current = dict(clinic.business_hours or {})
    special = {k: v for k, v in (current.get(EXCEPTIONS) or {}).items() if k != change.posted.get("date")}
    return _update_clinic(session, change, {"business_hours": {**current, EXCEPTIONS: special}}, config)


def set_assignment_policy(*, session, change: Change, config):
    return _update_clinic(session, change, text_fields(change.posted, ("assignment_policy",)), config)


# --- team -------------------------------------------------------------------------------------------


def invite(*, session, change: Change, config, hooks):
    """`POST /api/users` without a password: the person is emailed a setup link to /console/set-password."""
    body = load(auth_schemas.UserCreateIn(), text_fields(change.posted, ("name", "email", "role")))
    return onboarding.add_user(
        session=session, actor=change.actor, data=body, settings=config, now=change.now, hooks=hooks
    )


def reinvite(*, session, user_id: int, change: Change, config, hooks):
    onboarding.reinvite_user(
        session=session, actor=change.actor, user_id=user_id, settings=config, now=change.now, hooks=hooks
    )


def change_user(*, session, user_id: int, change: Change, hooks):
    """A user's role, or their being active (deactivate / reactivate), as `PUT /api/users/:id`."""
    data = text_fields(change.posted, ("role",))
    if change.posted.get("active") in ("true", "false"):
        data["active"] = change.posted["active"] == "true"
    body = load(auth_schemas.UserUpdateIn(), data)
    auth.get_user(session=session, clinic_id=change.actor.clinic_id, user_id=user_id)  # another clinic's: 404
    return auth.update_user(
        session=session, actor=change.actor, user_id=user_id, data=body, now=change.now, hooks=hooks
    )


# --- booking ----------------------------------------------------------------------------------------


def add_provider(*, session, change: Change):
    data = text_fields(change.posted, ("name", "kind", "feed_url"))
    data["hours"] = hours.week_from_form(change.posted, PROVIDER_HOURS)
    body = load(availability_schemas.ProviderCreateIn(), data)
    return availability.create_provider(
        session=session, clinic_id=change.actor.clinic_id, fields=body, now=change.now
    )


def _active(change: Change) -> dict:
    value = change.posted.get("active")
    return {"active": value == "true"} if value in ("true", "false") else {}


def set_provider_active(*, session, provider_id: int, change: Change):
    body = load(availability_schemas.ProviderChangeIn(), _active(change))
    return availability.update_provider(
        session=session, clinic_id=change.actor.clinic_id, provider_id=provider_id, fields=body,
        now=change.now,
    )  # fmt: skip


def add_type(*, session, change: Change):
    data = text_fields(change.posted, ("name", "mode"))
    minutes = (change.posted.get("duration_minutes") or "").strip()
    if minutes:
        data["duration_minutes"] = int(minutes) if minutes.isdecimal() and len(minutes) < 6 else minutes
    ids = change.posted.getlist("provider_ids") if hasattr(change.posted, "getlist") else []
    data["provider_ids"] = [int(i) if i.isdecimal() and len(i) < 11 else i for i in ids]
    body = load(availability_schemas.TypeCreateIn(), data)
    return availability.create_type(
        session=session, clinic_id=change.actor.clinic_id, fields=body, now=change.now
    )


def set_type_active(*, session, type_id: int, change: Change):
    body = load(availability_schemas.TypeChangeIn(), _active(change))
    return availability.update_type(
        session=session, clinic_id=change.actor.clinic_id, type_id=type_id, fields=body, now=change.now
    )


# --- sources ----------------------------------------------------------------------------------------


def add_source(*, session, change: Change):
    body = load(lead_schemas.LeadSourceIn(), text_fields(change.posted, ("name", "category", "monthly_cost")))
    return sources.create_source(session=session, actor=change.actor, data=body, now=change.now)


def change_source(*, session, source_id: int, change: Change):
    """A source's monthly cost (emptied: none), or its being active, as `PUT /api/lead-sources/:id`."""
    data = {}
    if "monthly_cost" in change.posted:
        data["monthly_cost"] = change.posted["monthly_cost"].strip() or None
    if change.posted.get("is_active") in ("true", "false"):
        data["is_active"] = change.posted["is_active"] == "true"
    body = load(lead_schemas.LeadSourceUpdateIn(), data)
    return sources.update_source(
        session=session, actor=change.actor, source_id=source_id, data=body, now=change.now
    )


# --- message templates ------------------------------------------------------------------------------


def add_template(*, session, change: Change):
    body = load(
        message_schemas.MessageTemplateIn(),
        text_fields(change.posted, ("name", "channel", "subject", "body")),
    )
    return message_templates.create_template(session=session, actor=change.actor, data=body, now=change.now)


def change_template(*, session, template_id: int, change: Change):
    """A template's name and texts, as `PUT /api/message-templates/:id` (its channel stays; only an
    email has a subject)."""
    current = message_templates.get_template(
        session=session, clinic_id=change.actor.clinic_id, template_id=template_id
    )  # another clinic's: 404, before anything is checked
    data = {"name": (change.posted.get("name") or "").strip(), "body": change.posted.get("body") or ""}
    if current.channel == EMAIL:
        data["subject"] = (change.posted.get("subject") or "").strip()
    body = load(message_schemas.MessageTemplateUpdateIn(), data)
    return message_templates.update_template(
        session=session, actor=change.actor, template_id=template_id, data=body, now=change.now
    )


def delete_template(*, session, template_id: int, change: Change):
    message_templates.delete_template(
        session=session, actor=change.actor, template_id=template_id, now=change.now
    )


def preview_template(*, session, change: Change, template_id: int | None = None) -> dict:
    """The texts typed (not saved) as a sample family reads them; refused as saving them would be.
    `template_id`: the template being edited (its channel: the form does not post one)."""
    typed = text_fields(change.posted, ("name", "channel", "subject"))
    typed["body"] = change.posted.get("body") or ""
    typed["name"] = typed.get("name") or "Preview"  # a name is not needed to see the texts
    if template_id is not None:
        typed["channel"] = message_templates.get_template(
            session=session, clinic_id=change.actor.clinic_id, template_id=template_id
        ).channel
    body = load(message_schemas.MessageTemplateIn(), typed)
    return message_templates.preview_text(
        session=session, actor=change.actor, channel=body["channel"], subject=body.get("subject"),
        body=body["body"],
    )  # fmt: skip


# --- channels ---------------------------------------------------------------------------------------

# The settings field a refusal names, by the form field it is shown beside.
SENDER_FIELDS = {"sms_number": "sms_sender", "sms_messaging_service_sid": "sms_sender"}


def _unnested(messages: dict) -> dict:
    """A refusal of PUT /api/clinic's `settings` ({"settings": {"email_from": [...]}}) as the
    channels forms' fields name it ({"email_from": [...]})."""
    inner = messages.get("settings") if isinstance(messages, dict) else None
    if not isinstance(inner, dict):
        return messages
    return {SENDER_FIELDS.get(k, k): v for k, v in inner.items()}


def _save_senders(session, change: Change, values: dict, config):
    try:
        return _update_clinic(session, change, {"settings": values}, config)
    except ValidationError as error:
        raise ValidationError(_unnested(error.messages)) from None
    except DomainError as error:
        named = (error.errors or {}).get("json")
        if isinstance(named, dict):
            error.errors = {**error.errors, "json": _unnested(named)}
        raise


def choose_sms_sender(*, session, change: Change, config):
    """The number or Messaging Service the clinic's texts go from, among those the operator assigned
    to it; none chosen: the platform's shared number."""
    chosen = (change.posted.get("sms_sender") or "").strip() or None
    is_pool = chosen is not None and sender_identity.sms_kind(chosen) == sender_identity.MESSAGING_SERVICE
    values = {
        "sms_number": None if is_pool else chosen,
        "sms_messaging_service_sid": chosen if is_pool else None,
    }
    return _save_senders(session, change, values, config)


def save_email_sender(*, session, change: Change, config):
    """The address the clinic's emails go from (on a domain the operator verified) and its name."""
    values = text_fields(change.posted, ("email_from", "email_from_name"))
    if not values:
        raise ValidationFailed("email_from", "give the address your emails go from")
    return _save_senders(session, change, values, config)


def choose_whatsapp_sender(*, session, change: Change, config):
    """The clinic's number its WhatsApp goes from; none: the platform's shared WhatsApp sender."""
    chosen = (change.posted.get("whatsapp_number") or "").strip() or None
    return _save_senders(session, change, {"whatsapp_number": chosen}, config)


def connect_instagram(*, session, change: Change, settings):
    """`PUT /api/integrations/instagram`: Meta is asked whose the token is; its refusal is said beside
    the token, another clinic's account beside the account's id."""
    body = load(
        instagram_schemas.InstagramAccountIn(),
        text_fields(change.posted, ("account_id", "access_token")),
    )
    try:
        return instagram.connect(
            session=session, actor=change.actor, account_id=body["account_id"],
            access_token=body["access_token"], now=change.now, settings=settings,
        )  # fmt: skip
    except graph.GraphUnavailable:
        raise graph.GraphUnavailable(wording.INSTAGRAM_UNAVAILABLE) from None
    except DomainError as error:
        if "json" not in (error.errors or {}) and error.errors:  # the 409 names account_id as is
            error.errors = {"json": error.errors}
        raise


def disconnect_instagram(*, session, change: Change):
    instagram.disconnect(session=session, actor=change.actor, now=change.now)


# --- the website's form -------------------------------------------------------------------------------

FORM_SECRET_OVERLAP = timedelta(hours=24)  # a replaced secret keeps working while the website switches


def make_form_secret(*, session, change: Change):
    """`POST /api/signing-secrets` with the web-form scope: the secret is in the answer, once."""
    data = text_fields(change.posted, ("name",))
    data["scopes"] = [Scope.WEB_FORM.value]
    body = load(secret_schemas.SigningSecretIn(), data)
    return signing_secrets.create(
        session=session, actor=change.actor, name=body["name"], scopes=body["scopes"], now=change.now
    )


def _form_secret(session, change: Change, secret_id: int):
    """The clinic's secret of the website's form (another clinic's, or another integration's: 404)."""
    row = signing_secrets.get(session=session, clinic_id=change.actor.clinic_id, secret_id=secret_id)
    if Scope.WEB_FORM not in row.scopes:
        raise NotFound(f"signing secret {secret_id} not found")
    return row


def replace_form_secret(*, session, secret_id: int, change: Change):
    """`POST /api/signing-secrets/:id/rotate`: a new secret, shown once; the old one works a day more."""
    _form_secret(session, change, secret_id)
    return signing_secrets.rotate(
        session=session, actor=change.actor, secret_id=secret_id, overlap=FORM_SECRET_OVERLAP,
        now=change.now,
    )  # fmt: skip


def revoke_form_secret(*, session, secret_id: int, change: Change):
    _form_secret(session, change, secret_id)
    signing_secrets.revoke(session=session, actor=change.actor, secret_id=secret_id, now=change.now)


# --- webhooks ---------------------------------------------------------------------------------------


def add_webhook(*, session, change: Change, settings):
    """`POST /api/webhooks`: the answer holds its signing secret, shown once."""
    data = text_fields(change.posted, ("url", "description"))
    data["event_types"] = change.posted.getlist("event_types") if hasattr(change.posted, "getlist") else []
    body = load(webhook_schemas.WebhookIn(), data)
    return webhooks.create_subscription(
        session=session, actor=change.actor, data=body, now=change.now, settings=settings
    )


def remove_webhook(*, session, webhook_id: int, change: Change):
    webhooks.delete_subscription(
        session=session, actor=change.actor, subscription_id=webhook_id, now=change.now
    )
