"""The Flask app's one Celery app (app/platform/celery_config.celery_init_app), made to run tasks:
its tasks imported, the worker's process signals connected.

Start a worker with `celery -A workers.main worker`; beat with `celery -A workers.main beat`.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
from pathlib import Path

from celery import Celery
from celery.apps.beat import Beat as BeatApp
from celery.signals import (
    beat_init,
    heartbeat_sent,
    setup_logging,
    task_success,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
)
from flask import Flask

import beat_schedule
from app.platform.telemetry import exporter, logs, metrics

log = logging.getLogger(__name__)
# Beat's sweeps (not the heartbeats, which are rows of their own): each run's end is recorded.
SWEEP_TASKS = frozenset(sweep.task for sweep in beat_schedule.SWEEPS if sweep.task != "ops.heartbeat")

__all__ = ["create_celery", "prepare_pool_child", "worker_app"]


def worker_app(flask_app: Flask) -> Celery:
    """The Flask app's Celery app (`app.extensions["celery"]`), ready to run tasks; once per app."""
    celery = flask_app.extensions["celery"]
    if flask_app.extensions.get("followup.worker_app") is celery:
        return celery
    flask_app.extensions["followup.worker_app"] = celery

    @task_success.connect(weak=False)
    def _sweep_ran(sender=None, **_kwargs):
        if sender is not None and sender.app is celery and sender.name in SWEEP_TASKS:
            with flask_app.app_context():
                _record_sweep_run(sender.name)

    @worker_process_init.connect(weak=False)
    def _fresh_pool_after_fork(**_kwargs):
        prepare_pool_child(flask_app)

    @worker_process_shutdown.connect(weak=False)
    def _forget_pool_child(**_kwargs):
        # prometheus-client multiprocess mode: a pool child's live gauges go with it.
        metrics.mark_process_dead(os.getpid())

    @worker_ready.connect(weak=False)
    @beat_init.connect(weak=False)
    def _serve_metrics(**_kwargs):
        # In the main process: its pool children write their samples to the same directory.
        exporter.start(settings=flask_app.config["SETTINGS"])

    celery.Beat = celery.subclass_with_self(_Beat)
    _import_tasks()
    return celery


class _Beat(BeatApp):
    """`celery beat` whose SIGTERM handler is the one below from the moment it starts: Celery installs
    its own before logging "beat: Starting..." and sending `beat_init`, so a deploy's SIGTERM in that
    moment met Celery's handler (close the shelf, then raise) instead of ours."""

    def install_sync_handler(self, service) -> None:
        _stop_on_sigterm(service)


def _stop_on_sigterm(service) -> None:
    """Beat told to stop (a deploy's SIGTERM) ends its loop, then saves its schedule once. Celery's
    own handler closes the schedule's file first and then raises SystemExit: arriving in a tick,
    beat went on ticking on the closed file and exited 1 ("invalid operation on closed shelf", seen
    in tests/reliability/test_rolling_upgrade.py). Here the loop is told to end and SystemExit
    interrupts its sleep; `Service.start` saves the schedule in its `finally`."""
    from celery import platforms

    def stop(_signum, _frame):
        service._is_shutdown.set()  # the loop's own flag (Service.stop() would also wait for the loop)
        raise SystemExit()

    platforms.signals.update(SIGTERM=stop, SIGINT=stop)


def _record_sweep_run(task: str) -> None:
    """When the sweep last finished, for ops (the console's health page); never fails the sweep."""
    from app.domains.ops import service as ops
    from app.platform.app_db import get_db, unit_of_work
    from app.platform.db import database_now

    try:
        now = database_now(get_db())
        with unit_of_work() as session:
            ops.record_sweep_run(session=session, task=task, now=now)
    except Exception:
        log.warning("could not record the run of sweep %s", task, exc_info=True)


def prepare_pool_child(flask_app: Flask) -> None:
    """A forked pool child must not reuse the parent's database connections nor its broker
    connections; it opens its own of both before its first job, which would otherwise wait for them."""
    db, dispatcher = flask_app.extensions["followup.db"], flask_app.extensions["followup.dispatcher"]
    db.engine.dispose(close=False)
    dispatcher.reset_after_fork()
    db.connect_ahead()
    dispatcher.connect_ahead()


@heartbeat_sent.connect(weak=False)
def _touch_liveness_file(**_kwargs):
    """A worker's consumer is alive while its heartbeat timer runs (every 2 s; it stops while the broker
    connection is being re-established): a container healthcheck reads the file's age."""
    path = os.environ.get("FOLLOWUP_LIVENESS_FILE")
    if path:
        Path(path).touch()


@setup_logging.connect(weak=False)
def _json_logs(loglevel=None, **_kwargs):
    """Worker and beat log the web's JSON lines (a receiver here stops Celery configuring its own)."""
    logs.configure(os.environ.get("LOG_LEVEL") or loglevel or "INFO")


# This module and the one the processes start (it builds the app): not modules of tasks.
ENTRY_MODULES = frozenset({__name__, "workers.main"})


def _import_tasks() -> None:
    """Tasks are @shared_task functions: importing every module of this package registers them on
    every Celery app (a new module of tasks needs no list)."""
    import workers

    for found in pkgutil.iter_modules(workers.__path__, "workers."):
        if found.name not in ENTRY_MODULES:
            importlib.import_module(found.name)


def create_celery(config=None) -> Celery:
    from app import create_app

    return worker_app(create_app(config, http=False))
