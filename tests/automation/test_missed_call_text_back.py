"""The missed-call text back (a default rule, off until the clinic turns it on): a lead's call nobody
answered gets one SMS through the contact policy, at most one per lead in the rule's window; with a
real worker and a local Twilio-like provider."""

from __future__ import annotations

import time

import pytest

from tests.automation.kit import steps_of
from tests.automation.outreachkit import configure_clinic, lead_with, open_jobs
from tests.intake.test_caller_id import post_call
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import FAST_DELIVERY, sms_settings, use
from tests.workers import thread_worker, wait_for

TOKEN = "secret-token"
CLINIC_NUMBER = "+14155550100"
PHONE, E164 = "(415) 555-2671", "+14155552671"
KEY = "missed_call_text_back"


@pytest.fixture
def provider(app, monkeypatch):
    with sms_provider(token=TOKEN) as (fake, url):
        use(monkeypatch, app.config["SETTINGS"], **FAST_DELIVERY, **sms_settings(url, token=TOKEN))
        fake.numbers.add(CLINIC_NUMBER)  # the clinic's own number is in the engine's Twilio account
        yield fake


def text_back_rule(client, tenant) -> dict:
    rules = client.get("/api/follow-up-rules", headers=tenant.headers()).get_json()
    return next(r for r in rules if r["default_key"] == KEY)


def turn_on(client, tenant) -> dict:
    rule = text_back_rule(client, tenant)
    resp = client.patch(f"/api/follow-up-rules/{rule['id']}", json={"active": True}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def texts_to(provider, number: str) -> list[dict]:
    with provider.lock:
        return [m for m in provider.messages if m["To"] == number]


def rule_steps(app, lead_id: int, rule_id: int):
    return [s for s in steps_of(app, lead_id) if s.rule_id == rule_id]


def missed(client, tenant, call_id: str) -> dict:
    return post_call(client, tenant.clinic, {"call_id": call_id, "from": E164, "answered": False})


def events_done(db) -> bool:
    return not open_jobs(db, "events.process")


def test_the_rule_is_seeded_off_and_a_missed_call_then_texts_nothing(app, client, db, tenant, provider):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    rule = text_back_rule(client, tenant)
    assert rule["active"] is False and rule["trigger"] == "activity.logged"
    lead = lead_with(client, tenant, phone=PHONE)
    with thread_worker(app):
        missed(client, tenant, "CA-off")
        wait_for(lambda: events_done(db), timeout=60)
        time.sleep(0.5)
    assert rule_steps(app, lead["id"], rule["id"]) == []
    assert provider.requests == 0


def test_a_missed_call_texts_the_lead_once_and_more_missed_calls_do_not(app, client, db, tenant, provider):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    rule = turn_on(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    with thread_worker(app):
        missed(client, tenant, "CA-1")
        [text] = wait_for(lambda: texts_to(provider, E164), timeout=60)
        assert "Sorry we missed your call" in text["Body"] and "Smile Orthodontics" in text["Body"]
        missed(client, tenant, "CA-2")  # the lead calls again, and again: one text is enough
        missed(client, tenant, "CA-3")
        wait_for(lambda: len(rule_steps(app, lead["id"], rule["id"])) == 3 and events_done(db), timeout=60)
        # An answered call is not a missed one: no step at all.
        post_call(client, tenant.clinic, {"call_id": "CA-spoke", "from": E164, "duration_seconds": 80})
        wait_for(lambda: events_done(db), timeout=60)
        time.sleep(0.5)
    assert len(texts_to(provider, E164)) == 1
    first, *again = rule_steps(app, lead["id"], rule["id"])
    assert first.status == "done" and len(again) == 2
    assert [s.status for s in again] == ["skipped", "skipped"]
    assert all("within 12 hours" in s.result["reason"] for s in again)


def test_missed_calls_queued_together_send_one_text(app, client, db, tenant, provider):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    rule = turn_on(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    missed(client, tenant, "CA-a")  # both wait for the worker: processed in one go, or one by one
    missed(client, tenant, "CA-b")
    with thread_worker(app):
        wait_for(lambda: len(rule_steps(app, lead["id"], rule["id"])) == 2 and events_done(db), timeout=60)
        wait_for(lambda: texts_to(provider, E164), timeout=60)
        time.sleep(0.5)
    assert len(texts_to(provider, E164)) == 1
    assert sorted(s.status for s in rule_steps(app, lead["id"], rule["id"])) == ["done", "skipped"]


def test_an_opted_out_lead_gets_no_text_and_the_why_trail_says_so(app, client, db, tenant, provider):
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER)
    rule = turn_on(client, tenant)
    lead = lead_with(client, tenant, phone=PHONE)
    resp = client.put(f"/api/leads/{lead['id']}", json={"sms_opt_out": True}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    with thread_worker(app):
        missed(client, tenant, "CA-opted-out")
        [step] = wait_for(lambda: rule_steps(app, lead["id"], rule["id"]), timeout=60)
        wait_for(lambda: events_done(db), timeout=60)
        time.sleep(0.5)
    [step] = rule_steps(app, lead["id"], rule["id"])
    assert step.status == "skipped" and "opted out of sms" in step.result["reason"]
    assert provider.requests == 0


def test_the_clinic_edits_the_text_and_the_window_is_checked(client, tenant):
    rule = text_back_rule(client, tenant)
    action = {**rule["actions"][0], "body": "{{ clinic_name }} here: we will ring you back."}
    bad = client.patch(
        f"/api/follow-up-rules/{rule['id']}",
        json={"actions": [{**action, "once_per_hours": 0}]},
        headers=tenant.headers(),
    )
    assert bad.status_code == 422 and "once_per_hours" in str(bad.get_json()["errors"])
    edited = client.patch(
        f"/api/follow-up-rules/{rule['id']}",
        json={"actions": [action], "active": True},
        headers=tenant.headers(),
    )
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["actions"][0]["body"].endswith("ring you back.")
