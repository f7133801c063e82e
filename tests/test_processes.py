"""The Procfile's processes and the queues: a new lead's queue is never shared with background work."""

from __future__ import annotations

import shlex

from honcho.environ import parse_procfile

import beat_schedule
from app.platform.celery_config import QUEUES, beat_entries, celery_config
from app.platform.config import Settings
from tests.workers import PROJECT_ROOT


def _procfile() -> dict[str, str]:
    return dict(parse_procfile((PROJECT_ROOT / "Procfile").read_text()).processes)


def _worker_queues() -> dict[str, set[str]]:
    """Each Procfile Celery worker's queues (a worker without --queues consumes every queue)."""
    workers = {}
    for name, command in _procfile().items():
        args = shlex.split(command)
        if "celery" not in args or "worker" not in args:
            continue
        given = [a.split("=", 1)[1] for a in args if a.startswith(("--queues=", "-Q="))]
        workers[name] = set(given[0].split(",")) if given else set(QUEUES)
    return workers


def test_the_procfile_runs_the_realtime_queue_on_a_worker_of_its_own():
    queues = _worker_queues()
    assert queues["worker"] == {"realtime"}
    others = {name: q for name, q in queues.items() if name != "worker"}
    assert others, "a second worker takes the other queues"
    assert all("realtime" not in q for q in others.values()), others


def test_background_work_yields_the_cpu_to_a_new_leads_path():
    """On a shared host the background workers' bursts (a batch of re-scorings, a campaign's
    delivery, an ANALYZE round) must not take the cores the realtime worker and the web need: they
    run niced."""
    for name in ("sender", "background", "sweeps"):
        args = shlex.split(_procfile()[name])
        assert args[args.index("exec") + 1] == "nice" and args.index("nice") < args.index("celery"), name
    assert "nice" not in shlex.split(_procfile()["worker"]) and "nice" not in shlex.split(_procfile()["web"])


def _concurrency(name: str) -> str:
    args = shlex.split(_procfile()[name])
    return next(a.split("=", 1)[1] for a in args if a.startswith("--concurrency="))


def test_the_sweeps_never_wait_behind_messages_or_bulk_work():
    """The ledger's sweeps (promote due rows, resend lost ones) keep their time while a campaign
    waits on a slow mail provider or a bulk action runs: a worker of their own. Bulk work runs one
    at a time by default, so at most one of its database sessions competes with a new lead's path
    (bench/automation, docs/performance.md). Messages are sent by a worker of their own, in threads:
    a send waits on its provider, not on the CPU, so several go at once, and a bulk action's chunk
    never holds a reminder back (bench/fairness)."""
    queues = _worker_queues()
    assert queues["sweeps"] == {"sweeps"}
    assert queues["background"] == {"bulk", "timers"} and queues["sender"] == {"notifications"}
    assert _concurrency("background") == "${BACKGROUND_CONCURRENCY:-1}"
    assert "--pool=threads" in shlex.split(_procfile()["sender"])
    assert _concurrency("sender") == "${SENDER_CONCURRENCY:-4}"
    assert _concurrency("sweeps") == "1"


def test_every_queue_is_consumed_by_a_procfile_worker(db):
    consumed = set().union(*_worker_queues().values())
    assert consumed == set(QUEUES)
    assert {kind.queue for kind in db.job_kinds} <= consumed


def test_beat_sends_no_sweep_to_the_realtime_queue(app):
    schedule = beat_entries(app.config["SETTINGS"])
    on_realtime = {name for name, entry in schedule.items() if entry["options"]["queue"] == "realtime"}
    # The one exception proves the realtime worker consumes; it does no work.
    assert on_realtime == {"worker-heartbeat"}
    assert schedule["worker-heartbeat"]["task"] == "ops.heartbeat"
    assert {entry["options"]["queue"] for entry in schedule.values()} <= set(QUEUES)


def test_a_sweep_task_sent_without_a_queue_is_routed_off_realtime(app):
    routes = celery_config(app.config["SETTINGS"])["task_routes"]
    for sweep in beat_schedule.SWEEPS:
        if sweep.task == "ops.heartbeat":
            continue
        assert routes[sweep.task]["queue"] == sweep.queue != "realtime", sweep


def test_each_worker_process_has_a_heartbeat_on_its_queues(app):
    schedule = beat_entries(app.config["SETTINGS"])
    beats = {
        entry["kwargs"]["name"]: entry["options"]["queue"]
        for entry in schedule.values()
        if entry["task"] == "ops.heartbeat"
    }
    for name, queues in _worker_queues().items():
        assert beats.get(name) in queues, (name, beats)


def test_webhooks_run_on_a_queue_and_worker_of_their_own(db):
    """A clinic's receiver is a server nobody here runs: however slow, it must not delay the emails
    and SMS of the notifications queue, nor the sweeps; the delivery job kind is registered there."""
    queues = _worker_queues()
    assert queues["webhooks"] == {"webhooks"}
    assert all("webhooks" not in q for name, q in queues.items() if name != "webhooks"), queues
    assert _concurrency("webhooks") == "${WEBHOOK_CONCURRENCY:-2}"
    args = shlex.split(_procfile()["webhooks"])
    assert args[args.index("exec") + 1] == "nice"
    assert db.job_kinds.kind_of("webhook.deliver").queue == "webhooks"


def test_one_clinic_cannot_hold_every_webhook_worker_by_default():
    default_pool = int(_concurrency("webhooks").removeprefix("${WEBHOOK_CONCURRENCY:-").removesuffix("}"))
    assert Settings().webhook_max_concurrent_per_clinic < default_pool
