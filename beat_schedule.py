"""The beat schedule: task names, queues and intervals; no logic. Intervals come from settings."""

from __future__ import annotations

# Every task's queue. Anything not listed goes to `realtime`.
TASK_ROUTES = {
    "ops.heartbeat": {"queue": "realtime"},
}


def build(settings) -> dict:
    """The beat schedule for these settings (intervals in seconds)."""
    return {
        "worker-heartbeat": {
            "task": "ops.heartbeat",
            "schedule": settings.heartbeat_interval,
            "kwargs": {"name": "worker"},
        },
    }
