"""/metrics: the process instruments (app/platform/telemetry/metrics.py) plus figures read from the database
on each scrape: the ledger's jobs, notifications (dead and failed ones included), orphan leads,
queue lengths and the lag of due work. Written by prometheus-client.

Read-only figures across domains (like analytics). The scrape-time figures are gauges computed from
the truth (the database, the broker) rather than counters kept in memory, so every process answers
the same and a restart loses nothing.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder

from app.domains.automation import orphans
from app.domains.leads.models import Lead
from app.domains.outbound.models import Notification
from app.platform.celery_config import QUEUES
from app.platform.db import UnitOfWork
from app.platform.errors import NotFound, Unauthorized
from app.platform.scheduling.models import OPEN, ScheduledJob
from app.platform.telemetry import metrics as instruments


def check_token(*, configured: str | None, authorization: str | None) -> None:
    """No METRICS_TOKEN configured: 404 (the endpoint does not exist); a wrong or missing bearer: 401."""
    if not configured:
        raise NotFound("metrics are disabled: set METRICS_TOKEN")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), configured.encode()):
        raise Unauthorized("metrics need Authorization: Bearer <METRICS_TOKEN>")


def exposition(*, session: UnitOfWork, redis, now: datetime, accept: str | None = None) -> tuple[bytes, str]:
    """Every metric as (body, content type), in the format the scraper's Accept header asks for."""
    encode, content_type = choose_encoder(accept or "")
    figures = _Figures(session=session, redis=redis, now=now)
    return encode(instruments.Combined([instruments.process_samples(), figures])), content_type


class _Figures:
    """A collector reading the scrape-time figures (for one scrape: it holds that scrape's session)."""

    def __init__(self, *, session: UnitOfWork, redis, now: datetime):
        self._session, self._redis, self._now = session, redis, now

    def collect(self):
        yield self._jobs()
        yield self._notifications()
        yield self._due_lag()
        yield from self._orphans()
        yield from self._queues()

    def _jobs(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "followup_jobs", "Job ledger rows by status and kind.", labels=["status", "kind"]
        )
        rows = self._session.execute(
            sa.select(ScheduledJob.status, ScheduledJob.kind, sa.func.count()).group_by(
                ScheduledJob.status, ScheduledJob.kind
            )
        ).all()
        for status, kind, count in sorted(rows):
            family.add_metric([status, kind], count)
        return family

    def _notifications(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "followup_notifications",
            "Notifications by delivery status (dead and failed: given up) and channel.",
            labels=["status", "channel"],
        )
        rows = self._session.execute(
            sa.select(Notification.status, Notification.channel, sa.func.count()).group_by(
                Notification.status, Notification.channel
            )
        ).all()
        for status, channel, count in sorted(rows):
            family.add_metric([status, channel], count)
        return family

    def _due_lag(self) -> GaugeMetricFamily:
        oldest = self._session.scalar(
            sa.select(sa.func.min(ScheduledJob.due_at)).where(
                ScheduledJob.status.in_(OPEN), ScheduledJob.due_at <= self._now
            )
        )
        lag = max(0.0, (self._now - oldest).total_seconds()) if oldest is not None else 0.0
        return GaugeMetricFamily(
            "followup_due_job_lag_seconds", "Age of the oldest due job not yet done.", value=lag
        )

    def _orphans(self):
        yield GaugeMetricFamily(
            "followup_orphan_leads",
            "Open leads with no next step: no open task, no pending ledger step, no active sequence.",
            value=self._session.scalar(_orphan_count(self._session.database.job_kinds.derived_kinds())),
        )
        given, not_helped = orphans.sweep_counts(session=self._session)
        yield CounterMetricFamily(
            "followup_orphan_sweep_next_steps_given",
            "Leads the orphan sweep gave a next step (a follow-up task for their owner).",
            value=given,
        )
        yield CounterMetricFamily(
            "followup_orphan_sweep_not_helped",
            "Leads the orphan sweep could not give a next step (no owner and nobody to assign, or "
            "unreachable on every channel), each once per reason.",
            value=not_helped,
        )
        last_pass = orphans.orphan_leads_metric(session=self._session)
        if last_pass is not None:
            yield GaugeMetricFamily(
                "followup_orphan_sweep_last_pass_orphans",
                "Orphans the orphan sweep's last full pass over the leads found (before it gave them tasks).",
                value=last_pass,
            )

    def _queues(self):
        lengths = GaugeMetricFamily(
            "followup_queue_length", "Messages waiting in each Celery queue (Redis LLEN).", labels=["queue"]
        )
        try:
            pipe = self._redis.pipeline(transaction=False)
            for queue in QUEUES:
                pipe.llen(queue)
            for queue, length in zip(QUEUES, pipe.execute(), strict=True):
                lengths.add_metric([queue], length)
            up = 1
        except Exception:  # the broker is down: say so rather than fail the scrape
            up = 0
        yield lengths
        yield GaugeMetricFamily("followup_broker_up", "Whether the broker answered.", value=up)


def _orphan_count(derived_kinds: list[str]) -> sa.Select:
    """Orphans as the orphan sweep defines them (app/domains/automation/orphans.py), counted live:
    the definition names the engine's derived job kinds (app/bootstrap.py), read from the session's
    Database at each scrape."""
    return sa.select(sa.func.count()).select_from(Lead).where(orphans.no_next_step(derived_kinds))
