"""Flower shows what runs: a ledger message is named after its job's kind (Celery's `shadow` name)
and carries its subject in its arguments, whether published alone or in Celery's pipelined batch;
the worker's task-received event (what Flower reads) says the same."""

from __future__ import annotations

import base64
import json
import threading

from app.platform import clock
from tests.ledger import schedule, schedule_many
from tests.reliability.handlers import EFFECT
from tests.workers import thread_worker, wait_for


def messages(redis, queue: str = "realtime") -> list[dict]:
    """What a queue holds, as Flower and a worker read it: task, shown name, args, kwargs."""
    found = []
    for raw in redis.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        headers = message["headers"]
        found.append(
            {
                "task": headers["task"],
                "shadow": headers["shadow"],
                "args": args,
                "kwargs": kwargs,
                "argsrepr": headers["argsrepr"],
                "kwargsrepr": headers["kwargsrepr"],
            }
        )
    return found


def effect_job(n: int, now) -> dict:
    return {
        "kind": EFFECT,
        "due_at": now,
        "dedupe_key": f"flower-{n}",
        "subject_type": "lead",
        "subject_id": 40 + n,
    }


def test_a_message_sent_directly_is_named_after_its_kind_with_its_subject(app, db, redis, tenant):
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        job = schedule(session=session, now=now, clinic_id=tenant.id, **effect_job(1, now))
    [message] = messages(redis)  # one row due now: published after the commit
    assert message["task"] == "scheduling.run_job" and message["shadow"] == EFFECT
    assert message["args"] == [job.id] and message["kwargs"] == {"subject": "lead:41"}
    assert message["kwargsrepr"] == "{'subject': 'lead:41'}"


def test_messages_sent_in_a_batch_are_named_after_their_kinds_with_their_subjects(app, db, redis, tenant):
    now = clock.now()
    with app.app_context(), db.unit_of_work() as session:
        jobs = [effect_job(n, now) for n in (2, 3, 4)]
        schedule_many(session=session, now=now, jobs=[{**j, "clinic_id": tenant.id} for j in jobs])
    found = messages(redis)  # several rows: one pipelined Celery producer batch
    assert sorted(m["kwargs"]["subject"] for m in found) == ["lead:42", "lead:43", "lead:44"]
    assert {m["shadow"] for m in found} == {EFFECT}


def test_the_worker_task_received_event_names_the_kind_and_the_subject(app, db, tenant):
    events: list[dict] = []
    stop = threading.Event()
    with thread_worker(app) as celery:
        listener = threading.Thread(target=_listen, args=(celery, events, stop), daemon=True)
        listener.start()
        try:
            # Ask the worker for heartbeats until one arrives: from then on the receiver sees its events.
            wait_for(lambda: _heartbeat_seen(celery, events), timeout=30, interval=0.5)
            now = clock.now()
            with app.app_context(), db.unit_of_work() as session:
                job = schedule(session=session, now=now, clinic_id=tenant.id, **effect_job(5, now))
            received = wait_for(
                lambda: [e for e in events if e["type"] == "task-received" and e["name"] == EFFECT],
                timeout=30,
            )
        finally:
            stop.set()
            listener.join(timeout=10)
    [event] = received
    assert event["args"] == f"[{job.id}]" and event["kwargs"] == "{'subject': 'lead:45'}"


def _heartbeat_seen(celery, events: list) -> bool:
    if any(e["type"] == "worker-heartbeat" for e in events):
        return True
    celery.control.heartbeat()
    return False


def _listen(celery, events: list, stop: threading.Event) -> None:
    with celery.connection_for_read() as connection:
        receiver = celery.events.Receiver(connection, handlers={"*": events.append})
        for _ in receiver.itercapture(limit=None, timeout=60, wakeup=False):
            if stop.is_set():
                return
