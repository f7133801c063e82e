"""Celery's configuration, in one module: the process's one Celery app (`celery_init_app`, built
from the Flask app), its settings, and, for a Redis broker (RabbitMQ is the other), the transport it
uses. The web process publishes
jobs through it (app/platform/scheduling/dispatch.py); the workers and beat (workers/) run its tasks,
registered by importing workers/' modules. The beat schedule itself is the top-level
beat_schedule.py (its entries, no logic).

It lives in app/ because the web process publishes jobs without importing workers/.
"""

from __future__ import annotations

import logging

import redis as redis_lib
from celery import Celery, Task
from celery.schedules import crontab
from kombu import Exchange, Queue
from kombu.transport import redis

import beat_schedule
from app.platform.redis_clients import sentinel_options
from app.platform.redis_urls import is_sentinel

log = logging.getLogger(__name__)

# realtime: a new lead's path, consumed by a worker of its own (the Procfile's `worker`); the others
# by workers of their own: messages (`sender`), bulk work and the timers of leads and tasks
# (`background`), webhooks, and beat's sweeps never hold a realtime process. `timers` is a queue of
# its own so that a reminder or an SLA warning never waits behind a bulk action's chunks.
QUEUES = ("realtime", "notifications", "bulk", "timers", "sweeps", "webhooks")


def celery_init_app(flask_app) -> Celery:
    """The process's one Celery app, built from the Flask app as Flask's docs do it (every task runs
    in an app context) and kept in `app.extensions["celery"]`: the web process publishes through it,
    a worker (workers/celery_app.py) runs its tasks."""

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    celery = new_celery(flask_app.config["SETTINGS"], name=flask_app.name, task_cls=FlaskTask)
    celery.set_default()
    flask_app.extensions["celery"] = celery
    return celery


def new_celery(settings, *, name: str = "followup", task_cls: type[Task] | None = None) -> Celery:
    """A Celery app configured from `settings`: what `celery_init_app` builds for the Flask app, and
    what services run without one (a Dispatcher given only settings) publish through."""
    celery = Celery(name, task_cls=task_cls, set_as_current=False)
    celery.config_from_object(celery_config(settings))
    return celery


def celery_config(settings) -> dict:
    """Celery settings for the ledger (acks late, rejected on a lost worker, prefetch of one); the
    visibility timeout matches for broker and results. A publish waits for the broker no longer than
    the app's Redis clients do (app/platform/redis_clients.py): the same socket timeouts, and the same
    number of retries after a failed connection."""
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_timeout": settings.redis_socket_timeout,
    }
    broker = {
        "broker_url": settings.celery_broker_url,
        # A lost broker is waited for, never given up on: every worker and beat reconnects with backoff.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
    }
    if settings.broker_is_redis:
        # kombu's own Redis transport exits the worker when the connection drops with messages in
        # flight (`Transport` below).
        broker["broker_transport"] = "app.platform.celery_config:Transport"
        transport["retry_on_timeout"] = True
    if is_sentinel(settings.celery_broker_url):
        # kombu's Sentinel transport asks the Sentinels for the master on every new connection, so a
        # reconnection after a failover reaches the promoted replica (docs/operations/sentinel.md).
        broker["broker_transport"] = "app.platform.celery_config:SentinelTransport"
        transport["master_name"] = settings.redis_sentinel_master
        transport["sentinel_kwargs"] = sentinel_options(settings)
    return {
        **broker,
        "result_backend": None,  # results live in the database (the job ledger), not in Redis
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_time_limit": settings.task_time_limit,
        "task_soft_time_limit": settings.task_soft_time_limit,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "timezone": "UTC",
        "enable_utc": True,
        "task_queues": [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        "task_default_queue": "realtime",
        "task_default_exchange": "realtime",
        "task_default_routing_key": "realtime",
        "task_routes": TASK_ROUTES,
        "beat_schedule": beat_entries(settings),
        "worker_send_task_events": True,  # Flower shows tasks live
        # No task-sent event per message: it costs about a third of the publish rate in mass
        # dispatch, and what is pending is the ledger's to show (GET /api/jobs); workers still send
        # received/started/succeeded events for Flower.
        "task_send_sent_event": False,
        "broker_connection_timeout": settings.redis_connect_timeout,
        "task_publish_retry_policy": {
            "max_retries": settings.redis_retries,
            "interval_start": 0.05,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
    }


# Every task's queue when sent without one (beat's entries name theirs). Anything not listed goes to
# `realtime`. `scheduling.run_job` is published on the queue of its job kind (app/handlers.py's
# JOB_KINDS), whatever this says. The heartbeat, sent to several queues, is routed by entry.
TASK_ROUTES = {
    sweep.task: {"queue": sweep.queue} for sweep in beat_schedule.SWEEPS if sweep.task != "ops.heartbeat"
} | {"scheduling.run_job": {"queue": "realtime"}}


def beat_entries(settings) -> dict:
    """Celery's beat schedule from beat_schedule.SWEEPS for these settings (intervals in seconds,
    daily work at its hour)."""
    schedule = {}
    for sweep in beat_schedule.SWEEPS:
        if sweep.hour_setting:
            when = crontab(minute=0, hour=int(getattr(settings, sweep.hour_setting)))
            expires = beat_schedule.DAILY_EXPIRES_SECONDS
        else:
            when = float(getattr(settings, sweep.interval_setting))
            # A tick nobody consumed in time (workers down) expires instead of piling up; generous,
            # so a busy queue delays a sweep rather than starving it.
            expires = max(60.0, 10 * when)
        schedule[sweep.entry] = {
            "task": sweep.task,
            "schedule": when,
            "kwargs": dict(sweep.kwargs),
            "options": {"queue": sweep.queue, "expires": expires},
        }
    return schedule


# --- the Redis broker transports (direct, and through Sentinel), made to survive a lost connection ---
#
# kombu's Redis channel outlives its connection: closed after the connection dropped, it moves the
# messages it had delivered back to their queue, and a task finishing late acknowledges its message
# on it. By then the connection has let go of the transport (or the channel of the connection), so
# building a Redis client for either raises AttributeError, which is no connection error: Celery's
# consumer lets it through and the worker process exits instead of reconnecting. Here a detached
# channel raises a connection error instead, which Celery logs and rides out, and gives up restoring
# its delivered messages: they are still in the broker's unacked set, which sends them again after
# the visibility timeout; a broker that came back empty forgot them, and the ledger's redispatch
# sweep sends their jobs again (a second delivery of a job is a no-op: the claim).


def _detached(channel) -> bool:
    return channel.connection is None or channel.connection.client is None


class QoS(redis.QoS):
    def restore_unacked(self, client=None):
        if client is None and _detached(self.channel):
            log.warning(
                "broker connection lost with %d message(s) delivered; the broker or the ledger resends them",
                len(self._delivered),
            )
            self._delivered.clear()
            return
        super().restore_unacked(client)


class _Reconnects:
    """What both channels (to a Redis, through Sentinels) add to kombu's."""

    QoS = QoS

    def _connparams(self, asynchronous=False):
        if _detached(self):
            raise redis_lib.ConnectionError("the broker connection of this channel is closed")
        return super()._connparams(asynchronous=asynchronous)


class Channel(_Reconnects, redis.Channel):
    pass


class SentinelChannel(_Reconnects, redis.SentinelChannel):
    pass


class Transport(redis.Transport):
    Channel = Channel


class SentinelTransport(redis.SentinelTransport):
    Channel = SentinelChannel
