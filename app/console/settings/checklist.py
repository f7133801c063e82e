"""The setup checklist: for each step of a new clinic's setup, whether it is done and, if not, what
is missing in the clinic's words (wording.SETUP_MISSING). Each fact is read by its domain's service;
nothing is queried here."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.console import wording
from app.domains.auth import service as auth
from app.domains.auth.models import Clinic
from app.domains.auth.senders import identity as sender_identity
from app.domains.auth.signing import Scope
from app.domains.auth.signing_secrets import service as signing_secrets
from app.domains.booking_page import service as booking_page
from app.domains.business_hours.rules import WEEKDAYS
from app.domains.lead_messages import templates as message_templates
from app.domains.leads import sources
from app.domains.webhooks import service as webhooks
from app.platform.roles import Actor, Role

# The step's page, by the step (the endpoints of app/console/settings/pages.py).
PAGES = {
    "profile": "console.settings.profile",
    "team": "console.settings.team",
    "booking": "console.settings.booking",
    "sources": "console.settings.sources",
    "templates": "console.settings.templates",
    "channels": "console.settings.channels",
    "forms": "console.settings.forms",
    "webhooks": "console.settings.webhooks",
}


@dataclass(frozen=True)
class Step:
    key: str
    missing: list[str] = field(default_factory=list)  # sentences; empty: done
    notes: list[str] = field(default_factory=list)  # worth knowing, not missing

    @property
    def done(self) -> bool:
        return not self.missing

    @property
    def optional(self) -> bool:
        return self.key in wording.SETUP_OPTIONAL

    @property
    def title(self) -> str:
        return wording.SETUP_STEPS[self.key]

    @property
    def endpoint(self) -> str:
        return PAGES[self.key]


def hours_text(business_hours: dict) -> str:
    """A week's hours in one line: "Monday 08:00-17:00, ..., Saturday closed"."""
    parts = []
    for day in WEEKDAYS:
        periods = business_hours.get(day) or []
        if periods and isinstance(periods[0], str):
            periods = [periods]
        said = ", ".join(f"{opens}-{closes}" for opens, closes in periods) or "closed"
        parts.append(f"{wording.DAYS[day]} {said}")
    return "; ".join(parts)


def _profile(clinic: Clinic) -> Step:
    if clinic.updated_at > clinic.created_at:  # saved at least once since the operator made it
        return Step("profile")
    said = wording.SETUP_MISSING["hours_unconfirmed"].format(
        hours=hours_text(clinic.business_hours or {}), timezone=clinic.timezone
    )
    return Step("profile", [said])


def _team(session, clinic_id: int) -> Step:
    users = [u for u in auth.list_users(session=session, clinic_id=clinic_id) if u.active]
    missing = [] if any(u.role != Role.CLINIC_ADMIN for u in users) else [wording.SETUP_MISSING["no_team"]]
    waiting = sum(1 for u in users if u.password_hash is None)
    notes = (
        [
            wording.SETUP_MISSING["invited_waiting"].format(
                count=waiting, people="person has" if waiting == 1 else "people have"
            )
        ]
        if waiting
        else []
    )
    return Step("team", missing, notes)


def _booking(session, clinic_id: int) -> Step:
    gaps = booking_page.booking_gaps(session, clinic_id)
    return Step("booking", [wording.SETUP_MISSING[gap] for gap in gaps])


def _sources(session, actor: Actor) -> Step:
    active = sources.list_sources(session=session, actor=actor, is_active=True)
    missing = [] if active else [wording.SETUP_MISSING["no_source"]]
    costs = any(s.monthly_cost is not None for s in active)
    return Step("sources", missing, [] if costs or not active else [wording.SETUP_MISSING["no_costs"]])


def _templates(session, clinic_id: int) -> Step:
    written = message_templates.list_templates(session=session, clinic_id=clinic_id)
    return Step("templates", [] if written else [wording.SETUP_MISSING["no_template"]])


def _channels(session, clinic: Clinic) -> Step:
    """Missing: email from the clinic's own domain (the operator verifies it, the clinic chooses the
    address). Texts from the platform's shared number work; a number of its own is only a note."""
    if not sender_identity.verified_domains(session=session, clinic_id=clinic.id):
        missing = [wording.SETUP_MISSING["no_email_domain"]]
    elif clinic.email_sender_domain is None:
        missing = [wording.SETUP_MISSING["email_from_unchosen"]]
    else:
        missing = []
    own_sms = clinic.sms_number or clinic.sms_messaging_service_sid
    return Step("channels", missing, [] if own_sms else [wording.SETUP_MISSING["shared_sms"]])


def form_secrets(session, clinic_id: int) -> list:
    """The clinic's signing secrets that sign its website's form and are kept: not revoked, not
    replaced (a rotated one's successor stands for it)."""
    return [
        s
        for s in signing_secrets.list_secrets(session=session, clinic_id=clinic_id)
        if Scope.WEB_FORM in s.scopes and s.revoked_at is None and s.replaced_by_id is None
    ]


def _forms(session, clinic_id: int) -> Step:
    kept = form_secrets(session, clinic_id)
    return Step("forms", [] if kept else [wording.SETUP_MISSING["no_form_secret"]])


def _webhooks(session, clinic_id: int) -> Step:
    """Optional: never missing; a note while there is none."""
    subscribed = webhooks.list_subscriptions(session=session, clinic_id=clinic_id)
    return Step("webhooks", [], [] if subscribed else [wording.SETUP_MISSING["no_webhook"]])


def steps(*, session, actor: Actor) -> list[Step]:
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    return [
        _profile(clinic), _team(session, clinic.id), _booking(session, clinic.id), _sources(session, actor),
        _templates(session, clinic.id), _channels(session, clinic), _forms(session, clinic.id),
        _webhooks(session, clinic.id),
    ]  # fmt: skip


def lands_on_checklist(*, session, actor: Actor) -> bool:
    """Whether the console opens on the checklist for the clinic's admins: steps left, not dismissed."""
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    return clinic.setup_dismissed_at is None and not all(s.done for s in steps(session=session, actor=actor))
