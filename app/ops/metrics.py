"""Prometheus metrics: the ledger's jobs, notifications, queue lengths and the lag of due work.

Read-only figures across domains (like analytics), written in the text exposition format by hand:
a handful of gauges computed on each scrape need no client library state.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.automation.orphans import orphan_leads_metric
from app.celery_config import QUEUES
from app.errors import NotFound, Unauthorized
from app.notifications.models import Notification
from app.scheduling.models import OPEN, ScheduledJob

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def check_token(*, configured: str | None, authorization: str | None) -> None:
    """No METRICS_TOKEN configured: 404 (the endpoint does not exist); a wrong or missing bearer: 401."""
    if not configured:
        raise NotFound("metrics are disabled: set METRICS_TOKEN")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), configured.encode()):
        raise Unauthorized("metrics need Authorization: Bearer <METRICS_TOKEN>")


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(lines: list[str], name: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{rendered}}} {value}" if rendered else f"{name} {value}")


def exposition(*, session: Session, redis, now: datetime) -> str:
    """Every metric, as Prometheus text."""
    lines: list[str] = []
    jobs = session.execute(
        sa.select(ScheduledJob.status, ScheduledJob.kind, sa.func.count()).group_by(
            ScheduledJob.status, ScheduledJob.kind
        )
    ).all()
    _family(
        lines,
        "followup_jobs",
        "Job ledger rows by status and kind.",
        [({"status": s, "kind": k}, n) for s, k, n in sorted(jobs)],
    )
    notes = session.execute(
        sa.select(Notification.status, Notification.channel, sa.func.count()).group_by(
            Notification.status, Notification.channel
        )
    ).all()
    _family(
        lines,
        "followup_notifications",
        "Notifications by delivery status and channel.",
        [({"status": s, "channel": c}, n) for s, c, n in sorted(notes)],
    )
    oldest = session.scalar(
        sa.select(sa.func.min(ScheduledJob.due_at)).where(
            ScheduledJob.status.in_(OPEN), ScheduledJob.due_at <= now
        )
    )
    lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
    _family(lines, "followup_due_job_lag_seconds", "Age of the oldest due job not yet done.", [({}, lag)])
    try:
        pipe = redis.pipeline(transaction=False)
        for queue in QUEUES:
            pipe.llen(queue)
        lengths = pipe.execute()
        up = 1
    except Exception:  # the broker is down: say so rather than fail the scrape
        lengths, up = [], 0
    _family(
        lines,
        "followup_queue_length",
        "Messages waiting in each Celery queue (Redis LLEN).",
        [({"queue": q}, n) for q, n in zip(QUEUES, lengths, strict=False)],
    )
    _family(lines, "followup_broker_up", "Whether the broker answered.", [({}, up)])
    orphans = orphan_leads_metric(session=session)
    _family(
        lines,
        "followup_orphan_leads",
        "Open leads with no next step (no open task, pending automated step or active sequence) "
        "found by the orphan sweep's last full pass.",
        [({}, orphans)] if orphans is not None else [],
    )
    return "\n".join(lines) + "\n"
