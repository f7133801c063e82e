"""The follow-up pass (issue 74 item 7, seed 004's worker): at a clinic's send window, one ledger job
sends a paced sequence's next message to exactly the silent leads that qualify, once, however many
times beat ticks or the job is delivered; the others are skipped with their reason in the summary."""

from __future__ import annotations

from app.platform import clock
from tests.automation.outreachkit import enroll, job_of_step, messages_to, process_events, run, steps_of
from tests.instagram.kit import connect
from tests.sequences.figureskit import EXPECTED, seed_follow_up_figures
from tests.sequences.passkit import (
    CASES,
    INSTAGRAM_ACCOUNT,
    beat_tick,
    clinic_at_a_window,
    enrolled_leads,
    instagram_sequence,
    lead_from_dm,
    paced_sequence,
    pass_jobs,
    passes,
)
from tests.workers import thread_worker, wait_for


def test_the_pass_at_a_window_follows_up_exactly_the_qualifying_silent_leads_once(app, client, db, tenant):
    window = clinic_at_a_window(client, tenant)
    sequence = paced_sequence(client, tenant)
    now = clock.now()
    leads = enrolled_leads(client, db, tenant, sequence, now)
    now = clock.now()  # the pass, after the enrollments
    # Paced: nothing goes before the pass, though the first step's delay is none.
    assert all(messages_to(db, lead_id) == [] for lead_id in leads.values())

    assert beat_tick(app, now) == 1
    assert beat_tick(app, now) == 1  # a second beat in the same window: the same job
    [job] = pass_jobs(db)
    assert job.dedupe_key == f"followup-pass:{tenant.id}:{job.payload['local_date']}:{window}"
    assert run(app, job, now) == "done"
    assert run(app, job, now) != "done"  # delivered twice: the second finds it done

    for step in steps_of(db, leads["qualifies"]):
        run(app, job_of_step(db, step), now)
    [sent] = messages_to(db, leads["qualifies"])
    assert sent.channel == "sms" and "still thinking it over" in sent.body
    for name in CASES:
        if name != "qualifies":
            assert messages_to(db, leads[name]) == [], name

    summary = passes(client, tenant)[0]  # newest first: this window's, before the earlier days'
    assert (summary["local_date"], summary["window"]) == (job.payload["local_date"], window)
    assert (summary["selected"], summary["sent"]) == (len(CASES), 1)
    reasons = {item["lead_id"]: item["reason"] for item in summary["skipped"]}
    assert reasons == {leads[name]: reason for name, (_, reason) in CASES.items() if reason}
    # Its next step waits for a later pass (a day later, and a window): this one sends nothing more.
    assert beat_tick(app, now) == 1 and pass_jobs(db) == []
    assert len(messages_to(db, leads["qualifies"])) == 1


def test_passes_are_the_clinics_own_and_the_settings_are_checked(client, tenant, make_tenant):
    assert passes(client, make_tenant("Other Clinic"), role="clinic_admin") == []
    for bad, field in (
        ({"windows": ["9am"]}, "windows"),
        ({"min_score": 0.7, "max_score": 0.5}, "min_score"),
        ({"max_follow_ups": 0}, "max_follow_ups"),
    ):
        resp = client.put("/api/clinic", json={"settings": {"follow_up_pass": bad}}, headers=tenant.headers())
        assert resp.status_code == 422, bad
        assert field in resp.get_json()["errors"]["json"]["settings"]["follow_up_pass"], bad


def test_on_instagram_the_pass_writes_with_the_human_agent_tag_for_7_days_then_a_person_follows_up(
    app, client, db, tenant, graph
):
    clinic_at_a_window(client, tenant)
    connect(client, tenant, graph, INSTAGRAM_ACCOUNT)
    sequence = instagram_sequence(client, tenant)
    graph.profiles["1790000000000741"] = {"username": "lopez.family", "name": "Maria Lopez"}
    graph.profiles["1790000000000742"] = {"username": "chen.family", "name": "Wei Chen"}
    now = clock.now()
    within = lead_from_dm(client, db, tenant, igsid="1790000000000741", days_ago=3, now=now)
    past = lead_from_dm(client, db, tenant, igsid="1790000000000742", days_ago=8, now=now)
    process_events(app, db)  # the DMs' own consequences first (a reply unenrolls), as days ago
    for lead_id in (within, past):
        enroll(client, tenant, lead_id, sequence["id"])
    now = clock.now()

    assert beat_tick(app, now) == 1
    [job] = pass_jobs(db)
    assert run(app, job, now) == "done"
    with thread_worker(app):  # the released step, then its DM, as the workers take them
        wait_for(lambda: graph.sent, timeout=60)
    [sent] = graph.sent  # three days after the family's DM: it goes, tagged as Meta requires
    assert (sent["recipient"], sent["text"]) == ("1790000000000741", "Hi Maria!")
    assert (sent["messaging_type"], sent["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")

    # Eight days after the family's DM: no DM, a task for the lead's owner, said in the summary.
    assert [m for m in messages_to(db, past) if m.channel == "instagram"] == []
    tasks = client.get(f"/api/leads/{past}/tasks", headers=tenant.headers()).get_json()
    [task] = [t for t in tasks if t["title"] == "Follow up on Instagram with Wei"]
    assert task["assigned_to_id"] is not None
    summary = passes(client, tenant)[0]
    assert (summary["selected"], summary["sent"]) == (2, 1)
    [handed] = summary["skipped"]
    assert handed["lead_id"] == past and handed["task_id"] == task["id"]
    assert "7-day human agent window" in handed["reason"] and "a task for a person" in handed["reason"]


def test_the_follow_up_figures_through_the_api(client, db, tenant):
    seed_follow_up_figures(db, tenant.id, clock.now())
    resp = client.get("/api/leads/analytics/follow-ups", headers=tenant.headers("clinic_admin"))
    assert resp.status_code == 200, resp.get_json()
    found = resp.get_json()
    assert [found[k] for k in ("sent_today", "sent", "replied", "response_rate")] == [
        EXPECTED[k] for k in ("sent_today", "sent", "replied", "response_rate")
    ]
    conversion = {
        r["name"]: (r["enrolled"], r["converted"], r["conversion_rate"])
        for r in found["conversion_by_sequence"]
    }
    assert conversion == EXPECTED["conversion"]
    top = [(r["name"], r["step"], r["sent"], r["replied"], r["reply_rate"]) for r in found["top_messages"]]
    assert top == EXPECTED["top"]
    assert [(r["name"], r["step"], r["leads"]) for r in found["leads_at_step"]] == EXPECTED["at_step"]
    assert (
        client.get("/api/leads/analytics/follow-ups", headers=tenant.headers("front_desk")).status_code == 403
    )
    bad = client.get("/api/leads/analytics/follow-ups?from=yesterday", headers=tenant.headers("clinic_admin"))
    assert bad.status_code == 422 and "from" in bad.get_json()["errors"]["query"]
