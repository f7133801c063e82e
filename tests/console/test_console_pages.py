"""The console through Flask's test client: login, sessions, CSRF, permissions per role, failures and
their retry, bulk jobs and their cancel (the browser tests are in test_browser.py)."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from app.domains.outbound.models import Notification
from app.platform.audit.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.outbound.kit import queue_emails, queue_sms


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', html).group(1)


def log_in(client, tenant, role: str = "clinic_admin"):
    page = client.get("/console/login")
    token = csrf_of(page.get_data(as_text=True))
    resp = client.post(
        "/console/login",
        data={"email": tenant.users[role].email, "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return resp


def set_status(db, ids, status, **values):
    with db.unit_of_work() as session:
        session.execute(
            sa.update(Notification).where(Notification.id.in_(ids)).values(status=status, **values)
        )


@pytest.fixture
def console(app):
    with app.test_client() as c:
        yield c


def test_login_sets_a_safe_cookie_and_logout_ends_it(console, tenant):
    assert console.get("/console/failures").status_code == 302  # to the login form
    resp = log_in(console, tenant)
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
    assert console.get("/console/failures").status_code == 200
    token = csrf_of(console.get("/console/failures").get_data(as_text=True))
    assert console.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert console.get("/console/failures").status_code == 302


def test_a_wrong_password_is_refused_and_throttled_like_the_api(console, tenant):
    for _ in range(3):
        token = csrf_of(console.get("/console/login").get_data(as_text=True))
        resp = console.post(
            "/console/login",
            data={"email": tenant.users["clinic_admin"].email, "password": "nope", "csrf_token": token},
        )
        assert resp.status_code == 401 and "wrong email or password" in resp.get_data(as_text=True)
    token = csrf_of(console.get("/console/login").get_data(as_text=True))
    resp = console.post(
        "/console/login",
        data={"email": tenant.users["clinic_admin"].email, "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert resp.status_code == 429


def test_a_form_without_its_csrf_token_is_refused(console, tenant):
    resp = console.post(
        "/console/login", data={"email": tenant.users["clinic_admin"].email, "password": TEST_PASSWORD}
    )
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
    log_in(console, tenant)
    assert console.post("/console/failures/retry?source=notifications").status_code == 400


def test_each_role_opens_only_the_pages_its_permissions_allow(app, tenant):
    pages = {
        "/console/failures": "lead:configure",
        "/console/health": "lead:configure",
        "/console/bulk-jobs": "lead:read",
        "/console/analytics": "lead:analytics",
    }
    homes = {
        "clinic_admin": "/console/settings",  # this clinic has steps left: the setup checklist first
        "treatment_coordinator": "/console/today",
        "front_desk": "/console/leads/new",  # their day: entering families (app/console/menu.py)
        "doctor": "/console/reports",
    }
    for role in tenant.users:
        with app.test_client() as c:
            log_in(c, tenant, role)
            for path, permission in pages.items():
                expected = 200 if permission in {str(p) for p in _permissions(role)} else 403
                assert c.get(path).status_code == expected, (role, path)
            assert c.get("/console/").headers["Location"] == homes[role]


def _permissions(role):
    from app.platform.roles import ROLE_PERMISSIONS, Role

    return ROLE_PERMISSIONS[Role(role)]


def test_failures_filter_preview_and_retry_audited_and_isolated(app, db, console, make_tenant):
    a, b = make_tenant("A"), make_tenant("B")
    dead, failed, sent = queue_emails(app, a, 3)
    (other,) = queue_emails(app, b, 1, prefix="b")
    set_status(db, [dead], "dead", last_error="connection refused")
    set_status(db, [failed], "failed", last_error="550 no such user")
    set_status(db, [sent], "sent")
    set_status(db, [other], "dead", last_error="connection refused")
    log_in(console, a)
    html = console.get("/console/failures").get_data(as_text=True)
    assert f'data-id="{dead}"' in html and f'data-id="{failed}"' in html and f'data-id="{other}"' not in html
    filtered = console.get("/console/failures?error=refused").get_data(as_text=True)
    assert f'data-id="{dead}"' in filtered and f'data-id="{failed}"' not in filtered
    # Each status said in words, as a badge; no status code shown.
    statuses = re.findall(r'<td class="status">(.*?)</td>', html)
    assert '<span class="badge danger">Gave up after its retries</span>' in statuses, statuses
    assert '<span class="badge danger">Failed</span>' in statuses, statuses
    assert not any(re.search(r">(dead|failed|unknown)<", s) for s in statuses), statuses
    # The filters offer words too, their values the codes the links carry.
    assert '<option value="dead">Gave up after its retries</option>' in html
    assert re.search(r'<option selected value="notifications">Messages</option>', html)
    assert '<option value="email">Email</option>' in html
    assert console.get("/console/failures?since=yesterday").status_code == 422
    preview = console.get("/console/failures/retry?error=refused").get_data(as_text=True)
    assert (
        "This will retry <strong>1</strong>" in preview and "may already have reached the lead" not in preview
    )
    assert "<h1>Retry 1 messages?</h1>" in preview and "matching:\n  Error containing refused." in preview
    assert "error=refused</code>" not in preview
    token = csrf_of(preview)
    assert (
        console.post("/console/failures/retry?error=refused", data={"csrf_token": token}).status_code == 302
    )
    assert (
        console.post(f"/console/failures/notifications/{other}/retry", data={"csrf_token": token}).status_code
        == 404
    )
    assert (
        console.post(
            f"/console/failures/notifications/{failed}/retry", data={"csrf_token": token}
        ).status_code
        == 302
    )
    with db.unit_of_work() as session:
        statuses = dict(session.execute(sa.select(Notification.id, Notification.status)).all())
        audited = session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "notification.retry")
        ).all()
    assert statuses[dead] == statuses[failed] == "pending" and statuses[other] == "dead"
    assert sorted(int(e.subject_id) for e in audited) == sorted([dead, failed])


def test_health_shows_orphans_due_jobs_heartbeats_and_queue_depths(app, db, console, tenant, client, redis):
    from app.domains.ops import service as ops
    from app.platform import clock
    from tests.leadkit import create_lead

    create_lead(client, tenant)  # its automation jobs are due and no worker runs them
    with db.unit_of_work() as session:
        ops.record_heartbeat(session=session, name="worker", now=clock.now())
    redis.rpush("bulk", "a", "b")
    try:
        log_in(console, tenant)
        html = console.get("/console/health").get_data(as_text=True)
    finally:
        redis.delete("bulk")
    assert re.search(r'id="orphan-leads">\d+<', html)
    # Kinds and queues said in words, a heartbeat's state as a badge, never their codes.
    assert re.search(r'<tr data-kind="events.process"><td>Events process</td><td class="count">[1-9]', html)
    assert '<tr data-name="worker"><td>worker</td>' in html
    assert re.search(r'<tr data-name="worker">.*?<span class="badge success">Running</span>', html)
    assert re.search(r'<tr data-queue="bulk"><td>Bulk</td><td class="depth">2</td>', html)


def test_a_leads_story_shows_phi_only_to_roles_with_it_and_audits_each_read(
    app, db, client, tenant, make_tenant
):
    from tests.leadkit import create_lead

    lead = create_lead(client, tenant, notes="allergic to latex", insurance_member_id="MEM-123")
    logged = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={
            "type": "PHONE_CALL",
            "direction": "OUTBOUND",
            "outcome": "voicemail",
            "notes": "left voicemail",
        },
        headers=tenant.headers("treatment_coordinator"),
    )
    assert logged.status_code == 201, logged.get_json()
    from tests.webhooks.test_webhooks import process_events

    process_events(app, db)  # the default rules act on lead.created: a task, steps, their why
    with app.test_client() as coordinator:
        log_in(coordinator, tenant, "treatment_coordinator")
        page = coordinator.get(f"/console/leads/{lead['id']}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "MEM-123" in html and "left voicemail" in html
        assert 'id="next-planned"' in html and 'id="thread"' in html and 'id="tasks"' in html
        tasks = html.split('<table id="tasks">')[1].split("</table>")[0]
        done = html.split('<ul id="next-done">')[1].split("</ul>")[0]
        assert "None." not in tasks and "your rule “" in done  # the task the rules made, and which rule
        assert coordinator.get(f"/console/leads/{lead['id'] + 100000}").status_code == 404
    with app.test_client() as front_desk:
        log_in(front_desk, tenant, "front_desk")
        html = front_desk.get(f"/console/leads/{lead['id']}").get_data(as_text=True)
        assert "MEM-123" not in html and "latex" not in html and "left voicemail" not in html
        assert 'id="phi-hidden"' in html and lead["first_name"] in html
    with app.test_client() as other:
        log_in(other, make_tenant("Other"))
        assert other.get(f"/console/leads/{lead['id']}").status_code == 404
    with db.unit_of_work() as session:
        reads = session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "lead.read", AuditEvent.subject_id == str(lead["id"])
            )
        ).all()
    # Every read is audited, as the API's: with whether it carried PHI.
    assert sorted((e.actor, e.after["phi"]) for e in reads) == sorted(
        [
            (f"user:{tenant.users['treatment_coordinator'].id}", True),
            (f"user:{tenant.users['front_desk'].id}", False),
        ]
    )


def test_analytics_draws_each_chart_with_its_table(console, client, tenant):
    from tests.leadkit import create_lead

    create_lead(client, tenant)
    log_in(console, tenant)
    html = console.get("/console/analytics").get_data(as_text=True)
    for section in ("funnel", "speed", "sources", "coordinators"):
        part = html.split(f'<section id="{section}">')[1].split("</section>")[0]
        assert "<svg" in part and "<table>" in part, section
    # Each section once, in the page's body; the tab's title is the page's name and nothing else.
    assert html.count('<section id="consultations">') == 1
    assert "<title>Analytics · Follow-up Engine</title>" in html
    assert console.get("/console/analytics?days=0").status_code == 422


def test_a_status_the_source_does_not_have_is_a_422_naming_it(console, tenant):
    log_in(console, tenant)
    resp = console.get("/console/failures?source=jobs&status=sent")
    assert resp.status_code == 422 and "status" in resp.get_data(as_text=True)
    assert console.get("/console/failures?source=jobs&status=dead").status_code == 200
    assert console.get("/console/failures?source=pigeons").status_code == 422


def test_the_cookie_is_secure_in_production():
    from types import SimpleNamespace

    from flask import Flask

    from app.console import init_console

    for env, secure in (("production", True), ("development", False)):
        bare = Flask(__name__)
        init_console(bare, SimpleNamespace(env=env))
        assert bare.config["SESSION_COOKIE_SECURE"] is secure


def test_login_goes_back_only_to_a_console_page(app, tenant):
    form = {"email": tenant.users["clinic_admin"].email, "password": TEST_PASSWORD}
    cases = (
        ("https://evil.example/x", "/console/"),
        ("//evil.example", "/console/"),
        ("/console/bulk-jobs", "/console/bulk-jobs"),
    )
    for target, expected in cases:
        with app.test_client() as c:
            token = csrf_of(c.get(f"/console/login?next={target}").get_data(as_text=True))
            resp = c.post(f"/console/login?next={target}", data={**form, "csrf_token": token})
            assert resp.status_code == 302 and resp.headers["Location"] == expected, target


def test_a_changed_password_or_disabled_user_ends_the_session(app, console, tenant):
    from tests.leadkit import set_user

    log_in(console, tenant)
    assert console.get("/console/failures").status_code == 200
    set_user(app, tenant.users["clinic_admin"].id, token_version=7)  # as a password change does
    resp = console.get("/console/failures")
    assert resp.status_code == 302 and "/console/login" in resp.headers["Location"]


def test_failed_webhook_deliveries_and_dead_jobs_are_listed_and_retried(app, db, console, client, tenant):
    from app.domains.webhooks.models import WebhookDelivery
    from app.platform import clock
    from app.platform.scheduling.models import ScheduledJob
    from tests import ledger
    from tests.leadkit import create_lead
    from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, run_attempts, subscribe

    app.config["SETTINGS"].webhook_max_attempts, saved = (
        1,
        app.config["SETTINGS"].webhook_max_attempts,
    )
    receiver = Receiver(failures=1000)
    try:
        subscribe(client, tenant, receiver.url, ["lead.created"])
        create_lead(client, tenant)
        process_events(app, db)
        [job] = deliveries(db)
        run_attempts(app, db, job)
    finally:
        app.config["SETTINGS"].webhook_max_attempts = saved
        receiver.close()
    with db.unit_of_work() as session:
        [delivery] = session.scalars(sa.select(WebhookDelivery)).all()
        dead = ledger.schedule(
            session=session, kind="notification.deliver", due_at=clock.now(), dedupe_key="console:dead",
            now=clock.now(), clinic_id=tenant.id,
        )  # fmt: skip
        session.flush()
        session.execute(sa.update(ScheduledJob).where(ScheduledJob.id == dead.id).values(status="dead"))
        delivery_id, dead_id = delivery.id, dead.id
    log_in(console, tenant)
    hooks = console.get("/console/failures?source=webhooks&kind=lead.created").get_data(as_text=True)
    assert f'data-id="{delivery_id}"' in hooks and "Redeliver" in hooks and "127.0.0.1" in hooks
    jobs = console.get("/console/failures?source=jobs&kind=notification.deliver").get_data(as_text=True)
    assert f'data-id="{dead_id}"' in jobs
    token = csrf_of(jobs)
    assert (
        console.post(
            f"/console/failures/webhooks/{delivery_id}/retry", data={"csrf_token": token}
        ).status_code
        == 302
    )
    assert (
        console.post(f"/console/failures/jobs/{dead_id}/retry", data={"csrf_token": token}).status_code == 302
    )
    with db.unit_of_work() as session:
        assert session.get(WebhookDelivery, delivery_id).status == "pending"
        assert session.get(ScheduledJob, dead_id).status in ("pending", "dispatched")
    assert f'data-id="{delivery_id}"' not in console.get("/console/failures?source=webhooks").get_data(
        as_text=True
    )


def test_unknown_query_keys_are_not_carried_into_links(console, tenant, app, db):
    (email,) = queue_emails(app, tenant, 1)
    set_status(db, [email], "dead", last_error="refused")
    log_in(console, tenant)
    resp = console.get("/console/failures?_scheme=http&_external=0&source=notifications&error=refused")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "_scheme" not in html and "error=refused" in html
    assert console.get("/console/failures/retry?_scheme=http&error=refused").status_code == 200


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/console/failures?since=2026-13-01"),
        ("GET", "/console/failures?page=-1"),
        ("GET", "/console/failures?page=99999999999999999999"),
        ("GET", "/console/failures?kind=" + "k" * 500),
        ("GET", "/console/analytics?days=abc"),
        ("GET", "/console/analytics?days=100000"),
        ("POST", "/console/failures/pigeons/1/retry"),
        ("POST", "/console/failures/notifications/999999/retry"),
        ("POST", "/console/failures/jobs/999999/retry"),
        ("POST", "/console/failures/webhooks/999999/retry"),
        ("GET", "/console/bulk-jobs/999999"),
        ("GET", "/console/bulk-jobs/progress?ids=999999"),
        ("POST", "/console/bulk-jobs/999999/cancel"),
        ("GET", "/console/leads/999999"),
        ("GET", "/console/nowhere"),
    ],
)
def test_bad_input_is_a_4xx_never_a_500(console, tenant, method, path):
    log_in(console, tenant)
    token = csrf_of(console.get("/console/failures").get_data(as_text=True))
    resp = console.open(path, method=method, data={"csrf_token": token} if method == "POST" else None)
    assert 400 <= resp.status_code < 500 or resp.status_code in (200, 302), (path, resp.status_code)


def test_bulk_progress_is_one_request_for_many_jobs_of_the_clinic_only(
    app, client, console, tenant, make_tenant
):
    from tests.bulk.test_bulk_admin import start

    first, second = start(client, tenant, 1), start(client, tenant, 1)
    other = start(client, make_tenant("Other"), 1)
    log_in(console, tenant)
    resp = console.get(f"/console/bulk-jobs/progress?ids={first},{second}")
    assert resp.status_code == 200
    assert [(j["id"], j["status"], j["total"]) for j in resp.get_json()["jobs"]] == [
        (first, "pending", 1), (second, "pending", 1),
    ]  # fmt: skip
    assert console.get(f"/console/bulk-jobs/progress?ids={first},{other}").status_code == 404
    assert console.get("/console/bulk-jobs/progress?ids=1,x").status_code == 422


def test_lateness_percentiles_of_the_clinics_jobs_of_the_last_hour(app, db, tenant):
    from datetime import timedelta

    from app.console import health
    from app.platform import clock
    from app.platform.scheduling.models import ScheduledJob
    from tests import ledger

    now = clock.now()
    with db.unit_of_work() as session:
        for late in range(1, 11):
            job = ledger.schedule(
                session=session, kind="notification.deliver", due_at=now - timedelta(minutes=5),
                dedupe_key=f"late:{late}", now=now, clinic_id=tenant.id,
            )  # fmt: skip
            session.flush()
            session.execute(
                sa.update(ScheduledJob)
                .where(ScheduledJob.id == job.id)
                .values(status="done", started_at=job.due_at + timedelta(seconds=late), finished_at=now)
            )
    with db.unit_of_work() as session:
        lateness = health.clinic_health(session=session, clinic_id=tenant.id, now=now)["lateness"]
    assert (lateness["jobs"], lateness["p50"], lateness["p90"], lateness["p99"]) == (10, 5.0, 9.0, 10.0)


def test_health_shows_when_each_sweep_last_ran(app, db, console, tenant, celery_app, celery_worker):
    from app.domains.ops import service as ops
    from tests.workers import wait_for

    def ran():
        with db.unit_of_work() as session:
            return ops.sweep_runs(session=session)

    assert "tasks.mark_overdue" not in ran()
    # As beat sends it: by name, to its queue; the worker runs the sweep and records its end.
    celery_app.send_task("tasks.mark_overdue", queue="sweeps")
    wait_for(lambda: "tasks.mark_overdue" in ran(), timeout=30)
    log_in(console, tenant)
    html = console.get("/console/health").get_data(as_text=True)
    sweeps = html.split('<table id="sweeps">')[1].split("</table>")[0]
    at = ran()["tasks.mark_overdue"]
    assert f"<tr><td>tasks.mark_overdue</td><td>{at:%Y-%m-%d %H:%M:%S}</td>" in sweeps
    with db.unit_of_work() as session:  # a sweep's run is not a process's heartbeat
        assert not any(name.startswith("sweep:") for name in ops.heartbeats(session=session))


def test_an_unknown_outcome_sms_is_listed_with_its_warning_and_retried_only_by_an_explicit_press(
    app, db, console, tenant
):
    (unknown,) = queue_sms(app, tenant, 1, prefix="u")
    set_status(db, [unknown], "unknown", last_error="outcome unknown, may already have reached the lead")
    log_in(console, tenant)
    html = console.get("/console/failures?status=unknown").get_data(as_text=True)
    assert f'data-id="{unknown}"' in html and "May already have reached the lead" in html
    assert "unknown" in console.get("/console/failures").get_data(as_text=True)
    assert 'name="confirm_may_duplicate"' in html  # the row's retry asks for the confirmation
    token = csrf_of(html)
    retry = f"/console/failures/notifications/{unknown}/retry"
    unconfirmed = console.post(retry, data={"csrf_token": token})
    assert unconfirmed.status_code == 409 and "confirm_may_duplicate" in unconfirmed.get_data(as_text=True)
    with db.unit_of_work() as session:
        assert session.get(Notification, unknown).status == "unknown"
    pressed = console.post(retry, data={"csrf_token": token, "confirm_may_duplicate": "yes"})
    assert pressed.status_code == 302
    with db.unit_of_work() as session:
        assert session.get(Notification, unknown).status == "pending"


def test_retry_matching_leaves_out_unknown_outcome_sms_and_email_like_the_api(app, db, console, tenant):
    unknown_email, failed_email = queue_emails(app, tenant, 2)
    unknown_sms, failed_sms = queue_sms(app, tenant, 2)
    outcome_unknown = "outcome unknown, may already have reached the lead: timed out"
    set_status(db, [unknown_email, unknown_sms], "unknown", last_error=outcome_unknown)
    set_status(db, [failed_email, failed_sms], "failed", last_error="550 no such user")
    log_in(console, tenant)
    preview = console.get("/console/failures/retry").get_data(as_text=True)
    assert "This will retry <strong>2</strong>" in preview and "2 matching message(s)" in preview
    assert f"<td>{unknown_email}</td>" not in preview and f"<td>{failed_email}</td>" in preview
    token = csrf_of(preview)
    assert console.post("/console/failures/retry", data={"csrf_token": token}).status_code == 302
    # Asking for the unknown ones by status retries none of them either.
    assert (
        console.post("/console/failures/retry?status=unknown", data={"csrf_token": token}).status_code == 302
    )
    with db.unit_of_work() as session:
        found = dict(session.execute(sa.select(Notification.id, Notification.status)).all())
        audited = session.scalars(
            sa.select(AuditEvent.subject_id).where(AuditEvent.action == "notification.retry")
        )
        retried = sorted(int(subject) for subject in audited)
    assert found[unknown_email] == found[unknown_sms] == "unknown"
    assert found[failed_email] == found[failed_sms] == "pending"
    assert retried == sorted([failed_email, failed_sms])


def test_the_recipient_filter_finds_a_message_by_its_exact_address_or_phone(app, db, console, tenant):
    emails = queue_emails(app, tenant, 2, to=lambda i: f"Patient{i}@Example.com")
    texts = queue_sms(app, tenant, 2)  # to +1555123000i
    set_status(db, [*emails, *texts], "failed", last_error="refused")
    log_in(console, tenant)

    def listed(recipient: str) -> set[int]:
        html = console.get("/console/failures", query_string={"recipient": recipient}).get_data(as_text=True)
        return {int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)}

    assert listed("patient1@example.com") == {emails[1]}  # case and spaces do not matter
    assert listed("  PATIENT0@example.COM ") == {emails[0]}
    assert listed("+15551230001") == {texts[1]}
    assert listed("(555) 123-0000") == {texts[0]}  # a national number, read in the clinic's region
    assert listed("example.com") == set() and listed("patient") == set()  # exact: no substring search
    retried = console.post(
        "/console/failures/retry",
        query_string={"recipient": "patient1@example.com"},
        data={"csrf_token": csrf_of(console.get("/console/failures").get_data(as_text=True))},
    )
    assert retried.status_code == 302
    with db.unit_of_work() as session:
        found = dict(session.execute(sa.select(Notification.id, Notification.status)).all())
    assert found[emails[1]] == "pending" and found[emails[0]] == found[texts[0]] == "failed"
