"""Rule and sequence statistics over the API, from steps and enrollments a real worker made."""

from tests.automation.outreachkit import (
    configure_clinic,
    enroll,
    enrollments,
    lead_with,
    make_sequence,
    post_inbound,
    sms,
)
from tests.automation.test_rules_api import post_rule
from tests.automation.test_update_stage import BACK_ON_A_NOTE, ON_A_CALL, log, trail_steps
from tests.tasks.taskkit import lead_for
from tests.workers import thread_worker, wait_for


def stats(client, tenant, path, query="", role="doctor", expect=200):
    resp = client.get(f"/api/{path}/stats{query}", headers=tenant.headers(role))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def test_rule_stats_count_runs_done_and_skipped_by_reason(app, client, tenant):
    forward = post_rule(client, tenant, ON_A_CALL)
    backward = post_rule(client, tenant, BACK_ON_A_NOTE)
    lead = lead_for(client, tenant)
    with thread_worker(app):
        log(client, tenant, lead["id"], type="PHONE_CALL", direction="OUTBOUND", outcome="spoke")
        wait_for(lambda: trail_steps(client, tenant, lead["id"], forward["id"], "done"), timeout=60)
        for _ in range(2):
            log(client, tenant, lead["id"], type="NOTE", notes="thinking")
        skipped = lambda: trail_steps(client, tenant, lead["id"], backward["id"], "skipped")  # noqa: E731
        wait_for(lambda: len(skipped()) == 2, timeout=60)
    rows = {row["rule_id"]: row for row in stats(client, tenant, "follow-up-rules")}
    assert rows[forward["id"]]["runs"] == 1 and rows[forward["id"]]["steps"]["done"] == 1
    assert rows[forward["id"]]["last_run_at"] is not None
    back = rows[backward["id"]]
    assert back["runs"] == 2 and back["steps"]["skipped"] == 2 and back["steps"]["done"] == 0
    [(reason, n)] = back["skipped_reasons"].items()
    assert n == 2 and "backwards" in reason
    # A range before anything happened counts nothing.
    early = stats(client, tenant, "follow-up-rules", "?to=2020-01-01T00:00:00Z")
    assert all(row["runs"] == 0 for row in early)


def ended(client, tenant, lead_id) -> bool:
    return enrollments(client, tenant, lead_id)[0]["status"] == "unenrolled"


def test_sequence_stats_count_enrolled_replied_unenrolled_and_converted(app, client, tenant):
    configure_clinic(client, tenant)
    sequence = make_sequence(client, tenant, [sms(), sms("Still there?", 1, "days")])
    replier = lead_with(client, tenant, phone="(415) 555-2671")
    converter = lead_with(client, tenant, phone="(415) 555-2672")
    for lead in (replier, converter):
        enroll(client, tenant, lead["id"], sequence["id"])
    with thread_worker(app):
        reply = {"channel": "sms", "from": "+14155552671", "body": "yes", "message_id": "SMx"}
        assert post_inbound(client, tenant.clinic, reply).status_code == 200
        converted = client.post(f"/api/leads/{converter['id']}/convert", headers=tenant.headers())
        assert converted.status_code == 200, converted.get_json()
        for lead in (replier, converter):
            wait_for(lambda lead=lead: ended(client, tenant, lead["id"]), timeout=60)
    [row] = [r for r in stats(client, tenant, "sequences") if r["sequence_id"] == sequence["id"]]
    assert (row["enrolled"], row["active_enrollments"], row["completed"], row["replied"]) == (2, 0, 0, 1)
    assert row["unenrolled_by_reason"] == {"replied": 1, "converted": 1}
    assert row["converted_within_30_days"] == 1


def test_stats_permissions_range_and_tenancy(client, tenant, make_tenant):
    stats(client, tenant, "follow-up-rules", role="treatment_coordinator", expect=403)
    stats(client, tenant, "sequences", role="front_desk", expect=403)
    backwards = "?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
    body = stats(client, tenant, "sequences", backwards, expect=422)
    assert "to" in body["errors"]["query"]
    other = make_tenant("Elsewhere")
    theirs = post_rule(client, other, {**ON_A_CALL, "name": "Theirs"})
    assert theirs["id"] not in {row["rule_id"] for row in stats(client, tenant, "follow-up-rules")}
