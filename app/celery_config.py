"""Celery settings shared by the worker/beat app (workers/) and the web process's sender.

It lives in app/ because the web process publishes jobs (app/scheduling) without importing workers/.
"""

from __future__ import annotations

from kombu import Exchange, Queue

import beat_schedule

# realtime: a new lead's path, consumed by a worker of its own (the Procfile's `worker`); the others
# by the `background` worker: messages, bulk work and beat's sweeps never hold a realtime process.
QUEUES = ("realtime", "notifications", "bulk", "sweeps", "webhooks")


def celery_config(settings) -> dict:
    """Celery settings for the ledger (acks late, rejected on a lost worker, prefetch of one); the
    visibility timeout matches for broker and results."""
    transport = {"visibility_timeout": settings.visibility_timeout}
    broker = {
        "broker_url": settings.celery_broker_url,
        # A lost broker is waited for, never given up on: every worker and beat reconnects with backoff.
        "broker_connection_retry": True,
        "broker_connection_max_retries": None,
    }
    if settings.broker_is_redis:
        # kombu's own Redis transport exits the worker when the connection drops with messages in
        # flight (app/broker_transport.py).
        broker["broker_transport"] = "app.broker_transport:Transport"
        transport |= {"socket_connect_timeout": settings.redis_connect_timeout, "retry_on_timeout": True}
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
        "task_routes": beat_schedule.TASK_ROUTES,
        "beat_schedule": beat_schedule.build(settings),
        "worker_send_task_events": True,  # Flower shows tasks live
        "task_send_sent_event": True,
    }
