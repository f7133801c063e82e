"""The demo clinic: created once, with one user per role; logins kept under var/ (never in git)."""

from __future__ import annotations

import json
import random
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from app.devtools import instagram
from app.domains.auth import service as auth
from app.domains.auth import signing
from app.domains.auth.instagram.models import InstagramAccount
from app.domains.auth.models import Clinic, User
from app.domains.auth.signing_secrets import service as signing_secrets
from app.domains.intake.inbound import messages as inbound
from app.domains.intake.instagram import webhook as ig_webhook
from app.platform.app_db import get_db, get_wiring, unit_of_work
from app.platform.config import VAR_DIR
from app.platform.events.consumers import PROCESS_KINDS
from app.platform.roles import Actor, Permission, Role
from app.platform.scheduling.models import ScheduledJob
from app.platform.scheduling.runner import run_job

DEMO_DOMAIN = "demo.followup.example"
DEMO_CLINIC_NAME = "Demo Orthodontics"
DEMO_ZONE = ZoneInfo("America/New_York")
LOGINS_FILE = "demo-logins.json"
DEFAULT_SEED = 77  # the week's names and choices, the same for the same seed


def demo_email(role: Role) -> str:
    return f"{role.value.replace('_', '.')}@{DEMO_DOMAIN}"


def seed(*, now: datetime, var_dir: Path = VAR_DIR, week_seed: int = DEFAULT_SEED) -> dict:
    """Create the demo clinic and its week (seed_week) if it is missing; return its id, webhook
    secret and logins. A second call changes nothing. Runs in the app context of an app serving
    the API (the week is written through it)."""
    logins_path = var_dir / LOGINS_FILE
    created = False
    with unit_of_work() as session:
        # Emails are unique per clinic only: any clinic may have a user with the demo admin's email,
        # so the demo clinic is the one of that name holding it (the first made, should two).
        admin = session.scalar(
            sa.select(User)
            .join(Clinic, Clinic.id == User.clinic_id)
            .where(User.email == demo_email(Role.CLINIC_ADMIN), Clinic.name == DEMO_CLINIC_NAME)
            .order_by(User.id)
            .limit(1)
        )
        if admin is None:
            clinic = auth.create_clinic(
                session=session,
                name=DEMO_CLINIC_NAME,
                now=now,
                hooks=get_wiring().auth,
                timezone="America/New_York",
                holiday_country="US",
            )
            users = [_create_demo_user(session, clinic.id, role, now) for role in Role]
            # A clinic already at work: its admin opens on the day, not on the setup checklist
            # (which stays under Settings, with what only the operator can do still to be done).
            clinic.setup_dismissed_at = now
            created = True
        else:
            clinic = session.get(Clinic, admin.clinic_id)
            users = _known_logins(logins_path) or _reset_demo_passwords(session, clinic.id, now)
        # The single web-form secret of before; none once the clinic has retired it (signing secrets).
        legacy = None if clinic.webhook_secret_retired_at else clinic.webhook_secret
        result = {"clinic_id": clinic.id, "webhook_secret": legacy, "users": users}
    var_dir.mkdir(parents=True, exist_ok=True)
    logins_path.write_text(json.dumps(result["users"], indent=2))
    logins_path.chmod(0o600)
    if created:
        seed_week(
            flask_app=current_app._get_current_object(),
            clinic_id=result["clinic_id"],
            users=users,
            now=now,
            seed=week_seed,
        )
    return result


def reset(*, now: datetime, var_dir: Path = VAR_DIR, week_seed: int = DEFAULT_SEED) -> dict:
    """Start the demo again: the current demo clinic is retired (renamed, its demo users unable to
    log in) and a new one seeded. Its rows stay, out of the demo's way: a clinic's data spans every
    table, and the engine has no clinic erasure to reuse."""
    with unit_of_work() as session:
        for clinic in session.scalars(sa.select(Clinic).where(Clinic.name == DEMO_CLINIC_NAME)):
            clinic.name = f"{DEMO_CLINIC_NAME} (retired {now:%Y-%m-%d %H:%M})"
            # Its Instagram account goes with it: the new demo clinic connects the same one.
            session.execute(sa.delete(InstagramAccount).where(InstagramAccount.clinic_id == clinic.id))
            for user in session.scalars(sa.select(User).where(User.clinic_id == clinic.id)):
                user.active = False
                user.updated_at = now
    (var_dir / LOGINS_FILE).unlink(missing_ok=True)
    return seed(now=now, var_dir=var_dir, week_seed=week_seed)


def _create_demo_user(session, clinic_id: int, role: Role, now: datetime) -> dict:
    password = secrets.token_urlsafe(12)
    data = {
        "email": demo_email(role),
        "name": f"Demo {role.value.replace('_', ' ')}",
        "role": role.value,
        "password": password,
        "timezone": "America/New_York",
    }
    auth.create_user(session=session, clinic_id=clinic_id, actor=None, data=data, now=now)
    return {"email": data["email"], "password": password, "role": role.value}


def _known_logins(path) -> list[dict] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _reset_demo_passwords(session, clinic_id: int, now: datetime) -> list[dict]:
    """The logins file was lost: give the demo users new passwords so they can be printed again."""
    logins = []
    for user in session.scalars(
        sa.select(User).where(User.clinic_id == clinic_id, User.email.like(f"%@{DEMO_DOMAIN}"))
    ):
        password = secrets.token_urlsafe(12)
        user.password_hash = auth.hash_password(password)
        user.updated_at = now
        logins.append({"email": user.email, "password": password, "role": user.role})
    return logins


# --- the demo week ---------------------------------------------------------------------------------
# Written through the engine's own API, in process (the same schemas, permissions, services and
# events a person's requests go through), then its events processed as a worker would: every
# derived row (activities, conversations, counts, tasks) is the engine's own.

WEEKDAYS_8_TO_5 = {day: ["08:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
FIRST_NAMES = (
    "Avery",
    "Blake",
    "Casey",
    "Devon",
    "Emery",
    "Finley",
    "Harper",
    "Jordan",
    "Kendall",
    "Logan",
    "Morgan",
    "Parker",
    "Quinn",
    "Reese",
    "Rowan",
    "Sawyer",
    "Taylor",
    "Skyler",
)
LAST_NAMES = ("Example", "Sample", "Testerson", "Placeholder", "Demo", "Fictional", "Mockley", "Specimen")
INTERESTS = (["BRACES_METAL"], ["INVISALIGN"], ["INVISALIGN", "BRACES_CLEAR"], ["SECOND_OPINION"])
# Where each demo lead stands: (stage it reaches, what happened on the way).
STORIES = (
    ("new_lead", "fresh"),
    ("new_lead", "fresh"),
    ("new_lead", "voicemail"),
    ("contacted", "texted"),
    ("contacted", "emailed"),
    ("contacted", "whatsapped"),
    ("contacted", "sequence"),
    ("consultation_scheduled", "today"),
    ("consultation_scheduled", "today"),
    ("consultation_scheduled", "this_week"),
    ("consultation_scheduled", "this_week"),
    ("consultation_completed", "attended"),
    ("pending_decision", "hesitating"),
    ("treatment_accepted", "accepted"),
    ("treatment_started", "converted"),
    ("lost", "lost"),
)
DEMO_INSTAGRAM_ACCOUNT = "17841400000000001"  # the demo clinic's Instagram professional account (IG_ID)
DEMO_INSTAGRAM_FAMILY = "5200000000000001"  # the family's Instagram-scoped id (IGSID)
INSTAGRAM_DM = "Hi! Do you do Invisalign for teens? My daughter is 14."
EVENT_ROUNDS = 10  # events beget events (a booking's, a move's); a week's settle in a few rounds


class DemoRequestFailed(RuntimeError):
    """The engine refused a demo write: the demo's data no longer fits the API (fix the demo)."""


@dataclass
class DemoApi:
    """The engine's API in process, as the demo's staff (each role's bearer token)."""

    client: object
    tokens: dict[str, str]
    calls: int = 0

    def send(self, method: str, path: str, role: str = "clinic_admin", expect: int = 200, **kwargs):
        headers = {"Authorization": f"Bearer {self.tokens[role]}", **kwargs.pop("headers", {})}
        self.calls += 1
        resp = self.client.open(path, method=method, headers=headers, **kwargs)
        if resp.status_code != expect:
            raise DemoRequestFailed(
                f"{method} {path}: {resp.status_code} {resp.get_data(as_text=True)[:500]}"
            )
        return resp.get_json()


def _api(flask_app, users: list[dict]) -> DemoApi:
    client = flask_app.test_client()
    tokens = {}
    for user in users:
        resp = client.post("/api/auth/login", json={"email": user["email"], "password": user["password"]})
        if resp.status_code != 200:
            raise DemoRequestFailed(f"the demo {user['role']} cannot log in: {resp.status_code}")
        tokens[user["role"]] = resp.get_json()["access_token"]
    return DemoApi(client=client, tokens=tokens)


def _phone(n: int) -> str:
    return f"(212) 555-{100 + n:04d}"  # 555-01xx: the numbers set aside for fiction


def _e164(n: int) -> str:
    return f"+1212555{100 + n:04d}"  # _phone(n) as WhatsApp gives it


def seed_week(*, flask_app, clinic_id: int, users: list[dict], now: datetime, seed: int) -> dict:
    """Fill the new demo clinic with a working week: booking set up, leads in every stage, calls,
    conversations both ways, consultations today and this week, a sequence running. Deterministic
    for a `seed` and `now`; returns what it made (counts)."""
    rng = random.Random(seed)
    api = _api(flask_app, users)
    api.send("PUT", "/api/clinic", json={"business_hours": WEEKDAYS_8_TO_5})
    booking = _booking_setup(api)
    sequence_id = _sequence(api)
    inbound_key = _inbound_key(clinic_id, now)
    sources = sorted(source["id"] for source in api.send("GET", "/api/lead-sources"))
    leads = []
    for n, (stage, story) in enumerate(STORIES):
        lead = _lead(api, rng, n, source_id=rng.choice(sources))
        _live_story(
            api, lead, stage, story,
            dict(booking, sequence_id=sequence_id, key=inbound_key, clinic_id=clinic_id, now=now, n=n),
        )  # fmt: skip
        leads.append(lead["id"])
    instagram_dms = _instagram_family(api, now)
    events_run = _process_events(clinic_id, now)
    return {"leads": len(leads) + instagram_dms, "requests": api.calls, "events_jobs": events_run}


def _booking_setup(api: DemoApi) -> dict:
    providers = [
        api.send(
            "POST", "/api/availability/providers", expect=201, json={"name": name, "hours": WEEKDAYS_8_TO_5}
        )
        for name in ("Dr. Avery Example", "Dr. Blake Sample")
    ]
    ids = [p["id"] for p in providers]
    kinds = [
        api.send(
            "POST",
            "/api/availability/types",
            expect=201,
            json={"name": name, "duration_minutes": minutes, "provider_ids": ids},
        )
        for name, minutes in (("New patient consultation", 45), ("Invisalign consultation", 30))
    ]
    return {"provider_ids": ids, "type_id": kinds[0]["id"]}


def _sequence(api: DemoApi) -> int:
    steps = [
        {
            "delay": {"amount": 1, "unit": "business_days"},
            "channel": "sms",
            "body": "Hi {{ first_name }}, this is Demo Orthodontics: any questions about your consultation?",
        },
        {
            "delay": {"amount": 2, "unit": "business_days"},
            "channel": "email",
            "subject": "Your smile, your schedule",
            "body": "Hi {{ first_name }}, we'd love to see you. Reply to this email or call us to book.",
        },
        {
            "delay": {"amount": 2, "unit": "business_days"},
            "channel": "call",
            "title": "Check in after the emails",
        },
    ]
    made = api.send(
        "POST", "/api/sequences", expect=201, json={"name": "New inquiry nurture", "steps": steps}
    )
    return made["id"]


def _inbound_key(clinic_id: int, now: datetime) -> dict:
    """The demo's own signing secret for the inbound-message endpoint (as an admin would make one)."""
    with unit_of_work() as session:
        admin = Actor(clinic_id=clinic_id, permissions=frozenset(Permission), extra={"ref": "demo"})
        row = signing_secrets.create(
            session=session, actor=admin, name="demo inbound", scopes=["inbound"], now=now
        )
        return {"key_id": row.key_id, "secret": row.secret}


def _lead(api: DemoApi, rng: random.Random, n: int, source_id: int) -> dict:
    first, last = FIRST_NAMES[n % len(FIRST_NAMES)], rng.choice(LAST_NAMES)
    body = {
        "first_name": first,
        "last_name": last,
        "phone": _phone(n),
        "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "treatment_interest": rng.choice(INTERESTS),
        "patient_first_name": rng.choice(FIRST_NAMES),
        "patient_relationship": "CHILD",
        "source_id": source_id,
    }
    return api.send("POST", "/api/leads", role="front_desk", expect=201, json=body)


def _live_story(api: DemoApi, lead: dict, stage: str, story: str, ctx: dict) -> None:
    """What happened to one lead this week, through the endpoints staff and providers use."""
    lead_id, now, n = lead["id"], ctx["now"], ctx["n"]
    path = f"/api/leads/{lead_id}"
    role = "treatment_coordinator"
    if story == "fresh":
        return
    if story == "voicemail":
        _call(api, path, "voicemail")
        return
    _call(api, path, "spoke")
    api.send("POST", f"{path}/stage", role=role, json={"stage": "contacted"})
    if story == "texted":
        api.send(
            "POST",
            f"{path}/messages",
            role=role,
            expect=201,
            json={
                "channel": "sms",
                "body": "Hi! Thanks for writing to Demo Orthodontics. When suits you for a consultation?",
            },
        )
        _inbound(
            api, ctx["key"], "sms", _phone(n), "Tuesday after school would work, thanks!", f"demo-sms-{n}"
        )
    elif story == "emailed":
        api.send(
            "POST",
            f"{path}/messages",
            role=role,
            expect=201,
            json={
                "channel": "email",
                "subject": "Your consultation at Demo Orthodontics",
                "body": "Thanks for your inquiry: here is what a first visit looks like.",
            },
        )
        _inbound(
            api,
            ctx["key"],
            "email",
            lead["email"],
            "Does insurance cover part of the braces?",
            f"demo-email-{n}",
        )
    elif story == "whatsapped":
        _whatsapp_from_family(
            ctx["clinic_id"], _e164(n), "Hi! Could my son come on a Saturday? He is 11.", f"demo-wa-{n}", now
        )
    elif story == "sequence":
        api.send(
            "POST", f"{path}/enrollments", role=role, expect=201, json={"sequence_id": ctx["sequence_id"]}
        )
    if stage == "contacted":
        return
    starts = _visit_time(now, story, n)
    consultation = api.send(
        "POST",
        f"{path}/consultations",
        role=role,
        expect=201,
        json={
            "starts_at": starts.isoformat(),
            "type_id": ctx["type_id"],
            "provider_id": ctx["provider_ids"][n % 2],
        },
    )
    if stage == "consultation_scheduled":
        return
    api.send(
        "POST",
        f"/api/consultations/{consultation['id']}/check-in",
        role="front_desk",
        json={"checked_in_at": starts.isoformat()},
    )
    if stage == "consultation_completed":
        return
    if stage == "lost":
        api.send(
            "POST",
            f"{path}/lost",
            role=role,
            json={"reason": "COST_FINANCIAL", "notes": "Will revisit after the holidays."},
        )
        return
    api.send(
        "POST",
        f"{path}/stage",
        role=role,
        json={"stage": "pending_decision", "hesitation_reason": "financing"},
    )
    if stage == "pending_decision":
        return
    api.send("POST", f"{path}/stage", role=role, json={"stage": "treatment_accepted"})
    if stage == "treatment_started":
        api.send("POST", f"{path}/convert", role="clinic_admin", json={"treatment_value": 5800})


def _call(api: DemoApi, path: str, outcome: str) -> None:
    body = {
        "type": "PHONE_CALL",
        "direction": "OUTBOUND",
        "outcome": outcome,
        "duration_minutes": 4 if outcome == "spoke" else 1,
    }
    api.send("POST", f"{path}/activities", role="treatment_coordinator", expect=201, json=body)


def _instagram_family(api: DemoApi, now: datetime) -> int:
    """A new family's first DM to the clinic's Instagram, which makes their lead; how many were
    received (0 or 1). The account is connected through the API, where Meta's Graph must say the
    token is the account's: `make run`'s Graph stand-in says so of a development token. Without a
    Graph that answers so, the demo has no Instagram."""
    token = f"dev-token-{DEMO_INSTAGRAM_ACCOUNT}"
    try:
        api.send(
            "PUT", "/api/integrations/instagram",
            json={"account_id": DEMO_INSTAGRAM_ACCOUNT, "access_token": token},
        )  # fmt: skip
    except DemoRequestFailed:
        return 0
    body = instagram.webhook_body(
        account_id=DEMO_INSTAGRAM_ACCOUNT, igsid=DEMO_INSTAGRAM_FAMILY, text=INSTAGRAM_DM, mid="demo-ig-1",
        at_ms=int(now.timestamp() * 1000),
    )  # fmt: skip
    with unit_of_work() as session:  # as Meta's signed webhook hands it to intake, once verified
        return ig_webhook.receive(
            session=session, notification=json.loads(body), settings=get_db().settings, now=now
        )


def _whatsapp_from_family(clinic_id: int, sender: str, body: str, message_id: str, now: datetime) -> None:
    """A family's WhatsApp message to the clinic, as Twilio's webhook hands it to intake once its
    signature and the clinic it is addressed to are checked (intake/inbound/twilio.py): the demo has
    no Twilio to sign it."""
    message = {"channel": inbound.WHATSAPP, "from": sender, "body": body, "message_id": message_id}
    with unit_of_work() as session:
        inbound.receive(session=session, clinic_id=clinic_id, message=message, now=now)


def _inbound(api: DemoApi, key: dict, channel: str, sender: str, body: str, message_id: str) -> None:
    """A family's message as the provider adapter posts it: signed by the clinic's secret."""
    path = "/api/capture/inbound"
    raw = json.dumps(
        {
            "channel": channel,
            "from": sender,
            "body": body,
            "message_id": message_id,
        }
    ).encode()
    timestamp = str(int(time.time()))  # the request's own time: the endpoint refuses old signatures
    signature = signing.sign_request(
        key["secret"], timestamp=timestamp, method="POST", path=path, raw_body=raw
    )
    headers = {
        "X-Followup-Key-Id": key["key_id"],
        "X-Followup-Timestamp": timestamp,
        "X-Followup-Signature": signature,
        "Content-Type": "application/json",
    }
    api.calls += 1
    resp = api.client.post(path, data=raw, headers=headers)
    if resp.status_code not in (200, 201):
        raise DemoRequestFailed(f"POST {path}: {resp.status_code} {resp.get_data(as_text=True)[:500]}")


def _visit_time(now: datetime, story: str, n: int) -> datetime:
    """A visit's start in the clinic's week (New York): today's, later this week's, or a past one."""
    local = now.astimezone(DEMO_ZONE)
    day = local.date()
    if story == "this_week":
        day += timedelta(days=2 + n % 3)
    elif story not in ("today",):
        day -= timedelta(days=2 + n % 3)  # seen already: attended, then decided (or not)
    while day.weekday() >= 5:  # the clinic's days are weekdays
        day += timedelta(days=1) if story in ("today", "this_week") else -timedelta(days=1)
    hour = 9 + (n * 2) % 7
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=DEMO_ZONE).astimezone(UTC)


def _process_events(clinic_id: int, now: datetime) -> int:
    """Run the demo's pending event processing (and the recounts it queues) as a worker would, so
    the pages show the derived rows as soon as the seed returns."""
    db = get_db()
    ran = 0
    for _ in range(EVENT_ROUNDS):
        with db.unit_of_work() as session:
            due = list(
                session.scalars(
                    sa.select(ScheduledJob.id)
                    .where(
                        ScheduledJob.clinic_id == clinic_id,
                        ScheduledJob.kind.in_(PROCESS_KINDS),
                        ScheduledJob.status.in_(("pending", "dispatched")),
                    )
                    .order_by(ScheduledJob.id)
                )
            )
        if not due:
            break
        for job_id in due:
            run_job(db=db, job_id=job_id, now=now)
            ran += 1
    return ran
