"""The follow-up pass's test kit: a clinic at a send window, a paced sequence, leads that qualify
or fail one criterion each, and the beat's task as a worker runs it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.auth.instagram.models import InstagramContact
from app.domains.leads.models import Lead
from app.domains.sequences.follow_up_pass import PASS_KIND
from app.domains.sequences.models import FollowUpPass, FollowUpSend
from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    lead_with,
    open_jobs,
    sms,
)
from tests.instagram.kit import dm

INSTAGRAM_ACCOUNT = "17841400000000074"

# Each lead's facts and the reason the pass gives when it skips it (None: it qualifies).
CASES = {
    "qualifies": ({}, None),
    "replied": ({"contacted_hours_ago": 2}, "heard from in the last 24 hours"),
    "cold": ({"score": 0.05}, "score 0.05 is outside 0.20-0.60"),
    "unscored": ({"score": None}, "not scored yet"),
    "maxed": ({"earlier_follow_ups": 2}, "already had the maximum of 2 follow-ups"),
    "recent": (
        {"earlier_follow_ups": 1, "last_follow_up_hours_ago": 3},
        "followed up within the last 24 hours",
    ),
}


def clinic_at_a_window(client, tenant) -> str:
    """A clinic where it is now midday, its window at 12:00; returns that window."""
    configure_clinic(client, tenant)
    settings = {"windows": ["12:00"], "min_score": 0.2, "max_score": 0.6, "max_follow_ups": 2}
    resp = client.put(
        "/api/clinic", json={"settings": {"follow_up_pass": settings}}, headers=tenant.headers()
    )
    assert resp.status_code == 200, resp.get_json()
    return "12:00"


def paced_sequence(client, tenant) -> dict:
    resp = client.post(
        "/api/sequences",
        json={
            "name": "Instagram follow-up",
            "paced_by_pass": True,
            "steps": [
                sms("Hi {{ first_name }}, still thinking it over?"),
                sms("Any questions for us?", 1, "days"),
            ],
        },
        headers=tenant.headers(),
    )
    assert resp.status_code == 201 and resp.get_json()["paced_by_pass"] is True, resp.get_json()
    return resp.get_json()


def enrolled_leads(client, db, tenant, sequence: dict, now: datetime, cases: dict = CASES) -> dict[str, int]:
    """One enrolled lead per case, captured two days ago, its facts as the case says."""
    ids = {}
    for number, (name, (facts, _)) in enumerate(cases.items()):
        lead = lead_with(client, tenant, phone=f"(415) 555-26{10 + number}", first_name=name.title())
        enroll(client, tenant, lead["id"], sequence["id"])
        ids[name] = lead["id"]
        contacted = facts.get("contacted_hours_ago")
        with db.unit_of_work() as session:
            session.execute(
                sa.update(Lead)
                .where(Lead.id == lead["id"])
                .values(
                    created_at=now - timedelta(days=2),
                    score=facts.get("score", 0.4),
                    last_contacted_at=now - timedelta(hours=contacted) if contacted else None,
                )
            )
            _earlier_follow_ups(session, tenant.id, lead["id"], sequence["id"], facts, now)
    return ids


def _earlier_follow_ups(session, clinic_id: int, lead_id: int, sequence_id: int, facts: dict, now) -> None:
    """Follow-ups of earlier days' passes, the last `last_follow_up_hours_ago` (else days) ago."""
    for day in range(facts.get("earlier_follow_ups", 0)):
        hours = facts.get("last_follow_up_hours_ago", 48) + 24 * day
        earlier = FollowUpPass(
            clinic_id=clinic_id,
            dedupe_key=f"earlier:{lead_id}:{day}",
            local_date=(now - timedelta(hours=hours)).date().isoformat(),
            window="09:00",
            ran_at=now - timedelta(hours=hours),
            selected=1,
            sent=1,
            skipped=[],
        )
        session.add(earlier)
        session.flush()
        session.add(
            FollowUpSend(
                pass_id=earlier.id,
                clinic_id=clinic_id,
                lead_id=lead_id,
                sequence_id=sequence_id,
                step_index=0,
                sent_at=earlier.ran_at,
            )
        )


def instagram_sequence(client, tenant) -> dict:
    resp = client.post(
        "/api/sequences",
        json={
            "name": "Instagram DMs",
            "paced_by_pass": True,
            "steps": [
                {
                    "delay": {"amount": 0, "unit": "minutes"},
                    "channel": "instagram",
                    "body": "Hi {{ first_name }}!",
                }
            ],
        },
        headers=tenant.headers(),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def lead_from_dm(client, db, tenant, *, igsid: str, days_ago: float, now: datetime) -> int:
    """A lead made by the family's DM `days_ago` (their last message, when Meta's windows start),
    silent since, scored inside the band."""
    at_ms = int((now - timedelta(days=days_ago)).timestamp() * 1000)
    dm(client, account_id=INSTAGRAM_ACCOUNT, igsid=igsid, text="Hi, how much are braces?", at_ms=at_ms)
    with db.unit_of_work() as session:
        lead_id = session.scalar(
            sa.select(InstagramContact.lead_id).where(
                InstagramContact.clinic_id == tenant.id, InstagramContact.igsid == igsid
            )
        )
        session.execute(
            sa.update(Lead)
            .where(Lead.id == lead_id)
            .values(
                created_at=now - timedelta(days=10),
                score=0.4,
                last_contacted_at=now - timedelta(days=days_ago),
            )
        )
    return lead_id


def beat_tick(app, now: datetime) -> int:
    """The beat's task, as a worker runs it at `now`."""
    from workers.sequences import schedule_follow_up_passes

    # `.run`: the task's body in this app's context (calling the task itself would enter the context
    # of whichever app last made itself Celery's default).
    with app.app_context():
        return schedule_follow_up_passes.run(now.isoformat())


def pass_jobs(db):
    return open_jobs(db, PASS_KIND)


def passes(client, tenant, role: str = "front_desk") -> list[dict]:
    resp = client.get("/api/follow-up-passes", headers=tenant.headers(role))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()
