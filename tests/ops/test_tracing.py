"""Tracing: one trace runs from POST /api/leads through events.process to the task it creates and
the email that tells the coordinator, across a real worker and the ledger's wait.

The SDK's InMemorySpanExporter collects the spans of this process: the Flask test client's requests
and an in-process thread worker (tests/workers.py) consuming the real Redis broker.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app import create_app
from app.domains.outbound.models import Notification
from app.platform import clock
from app.platform.scheduling.models import ScheduledJob
from app.platform.telemetry import tracing
from tests.automation.kit import open_all_day, tasks_of
from tests.conftest import test_settings
from tests.leadkit import create_lead
from tests.outbound.fakes import smtp_server
from tests.outbound.kit import smtp_settings, use
from tests.workers import thread_worker, wait_for


@pytest.fixture
def traced(migrated_database, redis_url):
    """An app built while tracing is on (so its requests and statements are traced), and the spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.start(provider)
    traced_app = create_app(test_settings(migrated_database, redis_url))
    try:
        yield traced_app, exporter
    finally:
        tracing.stop(traced_app)
        traced_app.extensions["followup.db"].engine.dispose()


def ledger(app) -> dict[str, ScheduledJob]:
    with app.extensions["followup.db"].unit_of_work() as session:
        return {job.kind: job for job in session.scalars(sa.select(ScheduledJob).order_by(ScheduledJob.id))}


def emails_sent(app) -> int:
    with app.extensions["followup.db"].unit_of_work() as session:
        return session.scalar(
            sa.select(sa.func.count()).where(Notification.channel == "email", Notification.status == "sent")
        )


def one(spans, name: str):
    [span] = [s for s in spans.get_finished_spans() if s.name == name]
    return span


def test_one_trace_runs_from_capture_to_the_task_and_the_email(traced, tenant, monkeypatch):
    app, spans = traced
    client = app.test_client()
    coordinator = tenant.headers("treatment_coordinator")  # told of each new lead by email
    emails = client.put(
        "/api/me/notification-preferences", json={"channels": {"new_lead": ["email"]}}, headers=coordinator
    )
    assert emails.status_code == 200, emails.get_json()
    open_all_day(client, tenant, clock.now())
    with smtp_server() as (mailbox, port):
        use(monkeypatch, app.config["SETTINGS"], **smtp_settings(port))
        lead = create_lead(client, tenant)  # the front desk captures; the coordinator gets the task
        with thread_worker(app):
            wait_for(lambda: emails_sent(app) == 1, timeout=60)
    assert len(mailbox.messages) == 1
    [task] = tasks_of(app, lead["id"])
    assert task.title == "Initial contact"

    capture = one(spans, "POST /api/leads")
    events = one(spans, "job events.process")
    delivery = one(spans, "job notification.deliver")
    trace_id = capture.context.trace_id
    assert capture.parent is None  # the request starts the trace
    assert events.context.trace_id == delivery.context.trace_id == trace_id
    assert events.parent.span_id == capture.context.span_id
    assert delivery.parent.span_id == events.context.span_id
    assert events.attributes["followup.job.id"] == ledger(app)["events.process"].id
    # Each run is linked to the Celery task that delivered it (its own trace, begun at the broker).
    runs = {s.context.span_id for s in spans.get_finished_spans() if s.name == "run/scheduling.run_job"}
    assert {link.context.span_id for link in events.links} <= runs and events.links
    assert {link.context.span_id for link in delivery.links} <= runs and delivery.links

    # The rows carry the context of the span that wrote them: the request wrote events.process, the
    # events.process run wrote the task's escalation and the email's delivery.
    rows = ledger(app)
    assert rows["events.process"].trace_parent == traceparent(capture)
    assert rows["notification.deliver"].trace_parent == traceparent(events)
    assert rows["task.escalate"].trace_parent == traceparent(events)
    # The task's INSERT ran inside the events.process run.
    inserts = [s for s in spans.get_finished_spans() if s.name.startswith("INSERT") and s.parent]
    assert any(s.parent.span_id == events.context.span_id for s in inserts)


def traceparent(span) -> str:
    context = span.context
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def test_tracing_is_off_by_default_and_rows_carry_no_context(app, client, tenant):
    assert not tracing.is_on()
    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "otlp"}) == ["otlp_proto_http"]
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}) == []
    create_lead(client, tenant)
    assert ledger(app)["events.process"].trace_parent is None


def test_spans_carry_route_patterns_never_tokens_secrets_or_names(traced, tenant, monkeypatch):
    """Issue 58: every kind of token a URL carries, and a patient's name in a query, appear in no
    span's name or attribute; the request spans are named by their route patterns."""
    from app.domains.auth import signing

    app, spans = traced
    client = app.test_client()
    settings = app.config["SETTINGS"]
    inbound_secret = "inbound-parse-secret-4f1c9a77e2"
    use(monkeypatch, settings, sendgrid_inbound_secret=inbound_secret, email_inbound_domain="reply.example")
    lead = create_lead(client, tenant, first_name="Zelda", last_name="Quixotic")
    feed = client.post("/api/me/calendar-token", headers=tenant.headers("treatment_coordinator")).get_json()
    feed_token = feed["url"].rsplit("/", 1)[1].removesuffix(".ics")
    unsubscribe = signing.unsubscribe_token(settings.secret_key, lead["id"])
    secrets = {
        "calendar feed token": feed_token,
        "SendGrid inbound secret": inbound_secret,
        "unsubscribe token": unsubscribe,
        "patient's name": "Zelda",
        "patient's last name": "Quixotic",
        "unmatched path's token": "tok-8d41e0c2b7",
    }
    requests = [
        client.get(feed["url"]),
        client.post(f"/api/providers/sendgrid/inbound/{inbound_secret}", data={"to": "x@reply.example"}),
        client.get(f"/api/unsubscribe/{unsubscribe}"),
        client.get("/api/leads?q=Zelda+Quixotic", headers=tenant.headers()),
        client.get("/api/nowhere/tok-8d41e0c2b7?name=Quixotic"),
    ]
    assert [r.status_code for r in requests] == [200, 200, 200, 200, 404]
    finished = spans.get_finished_spans()
    names = {s.name for s in finished}
    assert {"GET /api/calendar/<token>.ics", "POST /api/providers/sendgrid/inbound/<secret>"} <= names
    assert {"GET /api/unsubscribe/<token>", "GET /api/leads", "GET"} <= names
    for span in finished:
        seen = [span.name, *(str(v) for v in (span.attributes or {}).values())]
        seen += [str(v) for event in span.events for v in (event.attributes or {}).values()]
        for what, value in secrets.items():
            assert not [text for text in seen if value in text], f"{what} in span {span.name!r}"
