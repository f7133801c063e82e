"""A two-path sequence steered by what families really do with its email, end to end: the email goes
out through a real worker and SMTP server with its link rewritten to the engine's redirect; the
family that follows the link gets the text, the one that does not gets the call task, each once."""

from __future__ import annotations

import re
import urllib.parse

from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollments,
    job_of_step,
    make_sequence,
    messages_to,
    process_events,
    run,
)
from tests.leadkit import create_lead
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import FAST_DELIVERY, smtp_settings, use
from tests.sequences.branchkit import call_tasks_of, two_path_steps, waits_of
from tests.workers import thread_worker, wait_for

PRICES = "https://clinic.example/prices"


def _tracked_link(message) -> str:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    [url] = re.findall(r"https://engine\.example/r/\S+", part.get_payload(decode=True).decode())
    return urllib.parse.urlsplit(url).path


def test_the_family_that_clicks_gets_the_text_and_the_one_that_does_not_gets_the_call(
    app, client, db, tenant, monkeypatch
):
    configure_clinic(client, tenant, quiet_hours=None)
    steps = two_path_steps()
    steps[0]["body"] = "Hi {{ first_name }}, here is our price guide: " + PRICES
    sequence = make_sequence(client, tenant, steps, name="Price guide")
    families = {
        name: create_lead(
            client,
            tenant,
            role="clinic_admin",
            first_name=name,
            email=f"{name.lower()}@example.com",
            phone=phone,
        )
        for name, phone in (("Ana", "(415) 555-2671"), ("Ben", "(415) 555-2672"))
    }
    for lead in families.values():
        enroll(client, tenant, lead["id"], sequence["id"])

    settings = app.config["SETTINGS"]
    with smtp_server() as (server, port):
        use(monkeypatch, settings, **FAST_DELIVERY, **smtp_settings(port))
        use(monkeypatch, settings, public_base_url="https://engine.example")
        with thread_worker(app):
            wait_for(lambda: len(server.messages) >= 2, timeout=30)
        emails = {message["To"]: message for message in server.messages}

    # Ana follows the link in her email, twice; Ben never does.
    link = _tracked_link(emails["ana@example.com"])
    for _ in range(2):
        followed = client.get(link)
        assert followed.status_code == 302 and followed.headers["Location"] == PRICES
    process_events(app, db)

    ana, ben = families["Ana"]["id"], families["Ben"]["id"]
    assert [m.channel for m in messages_to(db, ana)] == ["email", "sms"]
    assert call_tasks_of(db, ana) == []
    [shown] = enrollments(client, tenant, ana)
    assert shown["path"][-1]["via"]["outcome"] == "link_clicked"

    [wait] = waits_of(db, ben)
    assert wait.status == "scheduled"  # still waiting for Ben
    assert run(app, job_of_step(db, wait), wait.run_at) == "done"  # two days on: the timeout
    run(app, job_of_step(db, wait), wait.run_at)  # the timeout delivered twice: nothing more
    assert [m.channel for m in messages_to(db, ben)] == ["email"]
    assert len(call_tasks_of(db, ben)) == 1
    [shown] = enrollments(client, tenant, ben)
    assert shown["path"][-1]["via"]["outcome"] == "timeout"
