"""What each settings page shows, read by the API's use cases and dumped by the API's answer
schemas (GET /api/clinic, /api/users, /api/availability/...)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, available_timezones

from app.console import wording
from app.console.settings import checklist, hours, snippet
from app.domains.auth import schemas as auth_schemas
from app.domains.auth import service as auth
from app.domains.auth.instagram import schemas as instagram_schemas
from app.domains.auth.instagram import service as instagram
from app.domains.auth.schemas import ASSIGNMENT_POLICIES
from app.domains.auth.senders import identity as sender_identity
from app.domains.auth.signing import Scope
from app.domains.auth.signing_secrets import schemas as secret_schemas
from app.domains.auth.signing_secrets import service as signing_secrets
from app.domains.availability import schemas as availability_schemas
from app.domains.availability import service as availability
from app.domains.availability.models import ProviderKind, VisitMode
from app.domains.booking_page import service as booking_page
from app.domains.business_hours.rules import EXCEPTIONS
from app.domains.lead_messages import schemas as message_schemas
from app.domains.lead_messages import templates as message_templates
from app.domains.lead_messages.models import CHANNELS
from app.domains.leads import schemas as lead_schemas
from app.domains.leads import sources as lead_sources
from app.domains.leads.models import LeadSourceCategory
from app.domains.webhooks import schemas as webhook_schemas
from app.domains.webhooks import service as webhooks_service
from app.platform.db import PageRequest
from app.platform.roles import Actor, Role

TIMEZONES = tuple(
    sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
)


def _clinic(session, actor: Actor) -> dict:
    return auth_schemas.ClinicOut().dump(auth.get_clinic(session=session, clinic_id=actor.clinic_id))


def profile(*, session, actor: Actor) -> dict:
    clinic = _clinic(session, actor)
    special = sorted((clinic["business_hours"].get(EXCEPTIONS) or {}).items())
    return {
        "clinic": clinic,
        "week": hours.week_rows(clinic["business_hours"]),
        "special_days": [{"date": day, "periods": hours.periods_of(p)} for day, p in special],
        "timezones": TIMEZONES,
        "step": _step(session, actor, "profile"),
    }


def team(*, session, actor: Actor) -> dict:
    users = auth_schemas.UserOut(many=True).dump(auth.list_users(session=session, clinic_id=actor.clinic_id))
    return {
        "clinic": _clinic(session, actor),
        "users": sorted(users, key=lambda u: (not u["active"], u["name"].lower(), u["id"])),
        "roles": [r.value for r in Role],
        "policies": ASSIGNMENT_POLICIES,
        "policy_names": wording.ASSIGNMENT_POLICIES,
        "step": _step(session, actor, "team"),
    }


def booking(*, session, actor: Actor, now: datetime) -> dict:
    providers = availability_schemas.ProviderOut(many=True).dump(
        availability.list_providers(session=session, clinic_id=actor.clinic_id)
    )
    types = availability_schemas.TypeOut(many=True).dump(
        availability.list_types(session=session, clinic_id=actor.clinic_id)
    )
    names = {p["id"]: p["name"] for p in providers}
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    return {
        "providers": [p | {"hours_text": checklist.hours_text(p["hours"])} for p in providers],
        "types": [t | {"provider_names": [names.get(i, f"#{i}") for i in t["provider_ids"]]} for t in types],
        "kinds": [k.value for k in ProviderKind],
        "kind_names": wording.PROVIDER_KINDS,
        "modes": [m.value for m in VisitMode],
        "week": hours.week_rows(clinic.business_hours or {}),  # a new provider's hours: the clinic's
        "test_link": booking_page.settings_answer(session, actor.clinic_id, now, public_base_url="")[
            "page_url"
        ],
        "step": _step(session, actor, "booking"),
    }


def sources(*, session, actor: Actor) -> dict:
    return {
        "sources": lead_schemas.LeadSourceOut(many=True).dump(
            lead_sources.list_sources(session=session, actor=actor)
        ),
        "categories": [c.value for c in LeadSourceCategory],
        "step": _step(session, actor, "sources"),
    }


def templates(*, session, actor: Actor, now: datetime) -> dict:
    """The clinic's templates, each with its preview for a sample family (the API's preview)."""
    written = message_schemas.MessageTemplateStatsOut(many=True).dump(
        message_templates.list_with_counts(session=session, clinic_id=actor.clinic_id)
    )
    previews = {
        t["id"]: message_schemas.PreviewOut().dump(
            message_templates.preview(
                session=session, actor=actor, template_id=t["id"], lead_id=None, now=now
            )
        )
        for t in written
    }
    return {
        "templates": [t | {"preview": previews[t["id"]]} for t in written],
        "channels": CHANNELS,
        "merge_fields": wording.MERGE_FIELDS,
        "step": _step(session, actor, "templates"),
    }


def template(*, session, actor: Actor, template_id: int, now: datetime) -> dict:
    """One template to edit (another clinic's: not found) and its preview for a sample family, with
    the merge fields to pick from."""
    found = message_templates.get_template(
        session=session, clinic_id=actor.clinic_id, template_id=template_id
    )
    preview = message_templates.preview(
        session=session, actor=actor, template_id=template_id, lead_id=None, now=now
    )
    return {
        "template": message_schemas.MessageTemplateOut().dump(found),
        "preview": message_schemas.PreviewOut().dump(preview),
        "merge_fields": wording.MERGE_FIELDS,
        "step": _step(session, actor, "templates"),
    }


def _names(session, actor: Actor) -> wording.Names:
    return wording.Names(zone=ZoneInfo(auth.get_clinic(session=session, clinic_id=actor.clinic_id).timezone))


def channels(*, session, actor: Actor, config) -> dict:
    """The clinic's senders: the SMS numbers and email domains the platform operator assigned and
    verified (read only here), which of them the clinic's settings use, WhatsApp's, Instagram's."""
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    settings = clinic.settings or {}
    assigned = sender_identity.assigned_sms_senders(session=session, clinic_id=clinic.id)
    account = instagram.account_of(session, clinic.id)
    return {
        "names": _names(session, actor),
        "sms": {
            "assigned": assigned,
            "current": clinic.sms_messaging_service_sid or clinic.sms_number or "",
            "shared": config.sms_from,
            "kinds": wording.SMS_SENDER_KINDS,
        },
        "email": {
            "domains": sender_identity.verified_domains(session=session, clinic_id=clinic.id),
            "own_domain": clinic.email_sender_domain,
            "email_from": settings.get("email_from") if clinic.email_sender_domain else None,
            "email_from_name": settings.get("email_from_name"),
            "shared": config.email_from,
        },
        "whatsapp": {
            "current": settings.get("whatsapp_number"),
            "shared": config.whatsapp_from,
            "numbers": [a["sender"] for a in assigned if a["kind"] == sender_identity.NUMBER],
        },
        "instagram": instagram_schemas.InstagramAccountOut().dump(account) if account else None,
        "ask_the_operator": wording.ASK_THE_OPERATOR,
        "step": _step(session, actor, "channels"),
    }


def forms(*, session, actor: Actor, config, now: datetime) -> dict:
    """The website's signing secrets (never a secret: the one just made is handed to the page by the
    route that made it), whether the clinic's old single secret still signs forms, and the snippet."""
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    rows = [
        s
        for s in signing_secrets.list_secrets(session=session, clinic_id=clinic.id)
        if Scope.WEB_FORM in s.scopes and signing_secrets.is_live(s, now)
    ]
    kept = checklist.form_secrets(session, clinic.id)
    key_id = kept[-1].key_id if kept else None
    return {
        "names": _names(session, actor),
        "secrets": secret_schemas.SigningSecretOut(many=True).dump(rows),
        "legacy_active": clinic.webhook_secret_retired_at is None,
        "form_html": snippet.form_html(),
        "relay": snippet.relay_php(public_base_url=config.public_base_url, key_id=key_id),
        "relay_file": snippet.RELAY_FILE,
        "endpoint": snippet.endpoint(config.public_base_url),
        "step": _step(session, actor, "forms"),
    }


RECENT_DELIVERIES = 5  # shown under each webhook


def webhooks(*, session, actor: Actor) -> dict:
    """The clinic's webhooks, each with its latest deliveries said in words."""
    listed = webhook_schemas.WebhookOut(many=True).dump(
        webhooks_service.list_subscriptions(session=session, clinic_id=actor.clinic_id)
    )
    shown = []
    for hook in listed:
        rows, total = webhooks_service.list_deliveries(
            session=session, clinic_id=actor.clinic_id, subscription_id=hook["id"],
            paging=PageRequest(1, RECENT_DELIVERIES),
        )  # fmt: skip
        deliveries = webhook_schemas.WebhookDeliveryOut(many=True).dump(rows)
        said = [d | {"said": wording.webhook_delivery(d)} for d in deliveries]
        shown.append(hook | {"deliveries": said, "delivery_count": total})
    return {
        "names": _names(session, actor),
        "webhooks": shown,
        "events": {e: wording.WEBHOOK_EVENTS.get(e, wording.code(e)) for e in webhook_schemas.EVENT_TYPES},
        "step": _step(session, actor, "webhooks"),
    }


def _step(session, actor: Actor, key: str) -> checklist.Step:
    return next(s for s in checklist.steps(session=session, actor=actor) if s.key == key)
