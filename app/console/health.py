"""Automation health for the console: the clinic's orphan leads, due jobs not yet run by kind and
lateness; the processes' heartbeats, the orphan sweep's last pass and the queues' depth (Redis, or
RabbitMQ through kombu), which are the system's and hold no clinic's data."""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.automation import orphans
from app.domains.automation.models import OrphanSweep
from app.domains.leads.models import Lead
from app.domains.ops import service as ops
from app.platform.celery_config import QUEUES
from app.platform.db import UnitOfWork
from app.platform.scheduling.models import DONE, OPEN, ScheduledJob

log = logging.getLogger(__name__)

LATENESS_WINDOW = timedelta(hours=1)
LATENESS_SAMPLE = 5000  # the newest finished jobs of the window a percentile is read from
PERCENTILES = (50, 90, 95, 99)
STALE_HEARTBEATS = 3  # intervals without a heartbeat before a process shows as silent


def percentile(sorted_values: list[float], p: float) -> float | None:
    """The nearest-rank percentile of already sorted values (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * p // 100))  # ceil without floats
    return sorted_values[int(rank) - 1]


def clinic_health(*, session: UnitOfWork, clinic_id: int, now: datetime) -> dict:
    """The clinic's automation: orphans, due work not yet run, and how late its jobs ran."""
    orphan_count = session.scalar(
        sa.select(sa.func.count())
        .select_from(Lead)
        .where(Lead.clinic_id == clinic_id, orphans.no_next_step(session.database.job_kinds.derived_kinds()))
    )
    due = session.execute(
        sa.select(ScheduledJob.kind, sa.func.count(), sa.func.min(ScheduledJob.due_at))
        .where(ScheduledJob.clinic_id == clinic_id, ScheduledJob.status.in_(OPEN), ScheduledJob.due_at <= now)
        .group_by(ScheduledJob.kind)
        .order_by(ScheduledJob.kind)
    ).all()
    ran = session.execute(
        sa.select(ScheduledJob.due_at, sa.func.coalesce(ScheduledJob.started_at, ScheduledJob.finished_at))
        .where(
            ScheduledJob.clinic_id == clinic_id,
            ScheduledJob.status == DONE,
            ScheduledJob.finished_at >= now - LATENESS_WINDOW,
        )
        .order_by(ScheduledJob.finished_at.desc())
        .limit(LATENESS_SAMPLE)
    ).all()
    late = sorted(max((began - due_at).total_seconds(), 0.0) for due_at, began in ran if began is not None)
    return {
        "orphan_leads": orphan_count,
        "due": [
            {"kind": kind, "count": count, "oldest_seconds": round((now - oldest).total_seconds())}
            for kind, count, oldest in due
        ],
        "lateness": {
            "jobs": len(late),
            "window_minutes": int(LATENESS_WINDOW.total_seconds() // 60),
            **{f"p{p}": percentile(late, p) for p in PERCENTILES},
        },
    }


def processes(*, session: UnitOfWork, now: datetime, heartbeat_interval: float) -> dict:
    """Every heartbeat (each queue's workers, as beat asks them) with its age; when each of beat's
    sweeps last finished a run (the orphan sweep's full pass, with what it found)."""
    silent_after = STALE_HEARTBEATS * heartbeat_interval
    beats = [
        {"name": name, "at": at, "age_seconds": round((now - at).total_seconds()),
         "silent": (now - at).total_seconds() > silent_after}
        for name, at in sorted(ops.heartbeats(session=session).items())
    ]  # fmt: skip
    sweep = session.get(OrphanSweep, "orphans")
    ran = [
        {"name": task, "last_pass_at": at, "found_last_pass": None}
        for task, at in sorted(ops.sweep_runs(session=session).items())
        if task != orphans.SWEEP_NAME
    ]
    return {
        "heartbeats": beats,
        "sweeps": [
            {"name": orphans.SWEEP_NAME, "last_pass_at": sweep.last_pass_at if sweep else None,
             "found_last_pass": sweep.found_last_pass if sweep else None},
            *ran,
        ],
    }  # fmt: skip


def queue_depths(*, settings, redis) -> dict:
    """Messages waiting in each Celery queue: LLEN on a Redis broker, a passive queue_declare on
    RabbitMQ. A broker that does not answer is reported, not raised."""
    try:
        if settings.broker_is_redis:
            pipe = redis.pipeline(transaction=False)
            for queue in QUEUES:
                pipe.llen(queue)
            depths = dict(zip(QUEUES, pipe.execute(), strict=True))
        else:
            depths = _amqp_depths(settings.celery_broker_url)
    except Exception as error:  # a down broker is what this page should show
        log.warning("queue depths unavailable: %s", type(error).__name__)
        return {"broker": _broker_kind(settings), "up": False, "queues": {}}
    return {"broker": _broker_kind(settings), "up": True, "queues": depths}


def _broker_kind(settings) -> str:
    return "redis" if settings.broker_is_redis else settings.celery_broker_url.split(":", 1)[0]


def _amqp_depths(url: str) -> dict[str, int | None]:
    from kombu import Connection

    depths: dict[str, int | None] = {}
    with Connection(url, connect_timeout=3) as connection:
        for queue in QUEUES:
            channel = connection.channel()  # a passive declare of a missing queue closes its channel
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except Exception:  # not declared yet: nothing has been sent to it
                depths[queue] = None
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return depths
