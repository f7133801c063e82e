"""The beat schedule: task names, queues and intervals; no logic. Intervals come from settings
(app/platform/celery_config.py turns these entries into Celery's `beat_schedule` and `task_routes`).

Adding a periodic sweep for a domain (e.g. tasks' "mark OVERDUE", leads' "find stale leads"):
  1. the use case in a module of app/domains/<domain>/ (its service.py, or the module of that
     concern, as tasks/alerts/overdue.py or pipeline/staleness.py), taking `now` and either a unit
     of work from its task or the Database to open units of its own (a sweep in chunks);
  2. a thin task in a module of workers/ (every one is imported) with an explicit name that reads
     the database's clock and makes that one service call;
  3. one `Sweep(...)` line in SWEEPS below naming the Settings field that holds its interval, or for
     daily work its hour (add the field to app/platform/config.py: `FOLLOWUP_<FIELD>` then overrides it),
     and its queue if not `sweeps`.
Sweeps must be idempotent: a second beat, or a run overlapping the previous one, must do no harm
(claim rows by compare-and-set, as app/platform/scheduling/sweeps.py does).

Sweeps run on the `sweeps` queue (the long nightly ones on `bulk`), never `realtime`: the realtime
queue is a new lead's path (events processing, its first task) and its worker (the Procfile's
`worker`) takes nothing else, so a sweep never holds a process a new lead waits for. Only the
realtime heartbeat goes there, to prove that worker consumes (each other worker process's
heartbeat goes to its own queue).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# A daily entry's tick nobody consumed by then (workers down all that time) is dropped: the next
# day's runs instead.
DAILY_EXPIRES_SECONDS = 12 * 3600.0


@dataclass(frozen=True)
class Sweep:
    entry: str  # the beat entry's name
    task: str  # the task's explicit name
    interval_setting: str | None = None  # the Settings field with the interval in seconds
    queue: str = "sweeps"
    kwargs: dict = field(default_factory=dict)
    # Daily work names instead the Settings field with its hour (UTC): a crontab at the top of that
    # hour. An interval of a day would count from beat's start, so a restart or a deploy postpones
    # it, and a daily deploy means it never runs.
    hour_setting: str | None = None


SWEEPS = (
    # Each worker process of the Procfile proves it consumes its queues and can write.
    Sweep(
        "worker-heartbeat", "ops.heartbeat", "heartbeat_interval", queue="realtime", kwargs={"name": "worker"}
    ),
    Sweep(
        "sender-heartbeat",
        "ops.heartbeat",
        "heartbeat_interval",
        queue="notifications",
        kwargs={"name": "sender"},
    ),
    Sweep(
        "background-heartbeat",
        "ops.heartbeat",
        "heartbeat_interval",
        queue="bulk",
        kwargs={"name": "background"},
    ),
    Sweep("sweeps-heartbeat", "ops.heartbeat", "heartbeat_interval", kwargs={"name": "sweeps"}),
    Sweep(
        "webhooks-heartbeat",
        "ops.heartbeat",
        "heartbeat_interval",
        queue="webhooks",
        kwargs={"name": "webhooks"},
    ),
    # The job ledger (app/platform/scheduling): promote rows coming within the horizon, resend rows the
    # broker lost, and drop old finished rows.
    Sweep("scheduling-promote-due", "scheduling.promote_due", "promote_interval"),
    Sweep("scheduling-redispatch-stale", "scheduling.redispatch_stale", "redispatch_interval"),
    Sweep("scheduling-purge-done", "scheduling.purge_done", hour_setting="purge_hour"),
    # Users' live-stream events past the Last-Event-ID replay window (app/platform/stream).
    Sweep("stream-purge-old", "stream.purge_old", hour_setting="purge_hour"),
    # PostgreSQL's planner statistics of the tables that changed (a database just migrated has none).
    Sweep("ops-refresh-statistics", "ops.refresh_statistics", "statistics_interval"),
    # ... and the dead row versions of the tables updated most (the ledger, events), found through
    # indexes that keep an entry for each until a VACUUM.
    Sweep("ops-vacuum-dead-rows", "ops.vacuum_dead_rows", "vacuum_interval"),
    # Follow-up tasks past due become OVERDUE; leads over their stage's max_days_in_stage, or quiet
    # too long, are flagged (lead.stale).
    Sweep("tasks-mark-overdue", "tasks.mark_overdue", "overdue_interval"),
    Sweep("pipeline-find-stale-leads", "pipeline.find_stale_leads", "stale_lead_interval"),
    # Events no processing job names (app/platform/events/recovery.py) are given one.
    Sweep("events-requeue-unprocessed", "events.requeue_unprocessed", "event_sweep_interval"),
    # Each user with overdue tasks gets one overdue digest an hour; open leads with no next step
    # (no open task, pending step or active sequence) get a follow-up task.
    Sweep("tasks-overdue-digests", "tasks.send_overdue_digests", "overdue_digest_interval"),
    Sweep("automation-find-orphan-leads", "automation.find_orphan_leads", "orphan_interval"),
    # A clinic's benefits reset date: its cost- or financing-hesitant pending leads are nudged, once a year.
    Sweep("consultations-nudge-benefits", "consultations.nudge_benefits", "benefits_reset_interval"),
    # Providers' private calendar feeds: a read job per feed due (app/domains/availability/feeds.py).
    Sweep("availability-read-feeds", "availability.read_feeds", "calendar_feed_interval"),
    # Clinics at a follow-up pass's send window: a pass job each (app/domains/sequences/follow_up_pass.py).
    Sweep("sequences-follow-up-passes", "sequences.schedule_follow_up_passes", "follow_up_pass_interval"),
    # Notifications: settle rows a dead worker left `sending`; queue each user's daily digest (at
    # the digest_hour, 08:00 by default, in the user's time).
    Sweep("notifications-recover-stuck", "notifications.recover_stuck_sends", "notification_stuck_interval"),
    # SMS whose outcome is unknown: looked up in Twilio's message list (never re-sent blindly).
    Sweep("notifications-reconcile-sms", "notifications.reconcile_unknown_sms", "sms_reconcile_interval"),
    Sweep("notifications-digests", "notifications.send_digests", "digest_interval"),
    # Clinic admins' analytics summary (daily or weekly, at the digest hour in the clinic's time).
    Sweep("analytics-summaries", "analytics.send_summaries", "summary_interval"),
    # The rows of changes the triggers add to the task and message months, each month's folded.
    Sweep("analytics-fold-months", "analytics.fold_months", "months_fold_interval"),
    # Idempotency keys past their 24 h; webhook deliveries a dead worker left `sending`.
    Sweep("idempotency-purge-expired", "idempotency.purge_expired", "idempotency_purge_interval"),
    Sweep("webhooks-recover-stuck", "webhooks.recover_stuck_deliveries", "webhook_stuck_interval"),
    # Intelligence: recount answered calls, train each clinic's lead-score model and the global prior,
    # re-score open leads. Long-running: on the bulk queue, not between the realtime jobs.
    Sweep("intelligence-nightly", "intelligence.nightly", hour_setting="nightly_hour", queue="bulk"),
    # Privacy: closed leads past their clinic's retention (erase_closed_after_months) are erased.
    Sweep(
        "privacy-erase-expired", "privacy.erase_expired_leads", hour_setting="retention_hour", queue="bulk"
    ),
)
