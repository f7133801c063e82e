"""Job kinds for tests, in the test process's engine and (FOLLOWUP_PLUGINS) in worker processes'.

Each effect is one audit_events row (action "test.effect", subject job:<id>) so tests count it exactly.
FOLLOWUP_TEST_HANDLER_SLEEP (seconds) slows every effect down, so a kill -9 can land mid-run.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from app.platform.audit import service as audit
from app.platform.events.types import Event
from app.platform.scheduling import JobKind

EFFECT = "test.effect"


def record_effect(*, session, job, now) -> None:
    """The countable effect: one audit row per run that committed."""
    pause = float(job.payload.get("sleep", os.environ.get("FOLLOWUP_TEST_HANDLER_SLEEP", 0)))
    if pause:
        time.sleep(pause)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=job.clinic_id,
            actor="system",
            action=EFFECT,
            subject_type="job",
            subject_id=job.id,
            at=now,
            after={"kind": job.kind, "attempt": job.attempts},
        ),
    )


def flaky(*, session, job, now) -> None:
    """Fails on its first `fail_times` attempts, then takes effect."""
    if job.attempts <= job.payload.get("fail_times", 2):
        record_effect(session=session, job=job, now=now)  # written, then rolled back with the failure
        raise RuntimeError(f"flaky failure on attempt {job.attempts}")
    record_effect(session=session, job=job, now=now)


def always_fails(*, session, job, now) -> None:
    record_effect(session=session, job=job, now=now)  # must never survive
    raise RuntimeError("the provider said no")


def chain(*, session, job, now) -> None:
    """Takes effect and schedules a follow-up job in the same claim transaction."""
    from tests.ledger import schedule

    record_effect(session=session, job=job, now=now)
    schedule(
        session=session,
        kind=EFFECT,
        due_at=now,
        dedupe_key=f"chain-child:{job.id}",
        now=now,
        clinic_id=job.clinic_id,
        subject_type="job",
        subject_id=job.id,
        origin={"parent_job": job.id},
    )


def kills_its_worker(*, session, job, now) -> None:
    """Takes down the process running it, as an OOM kill or a crash in a C extension would."""
    os.kill(os.getpid(), signal.SIGKILL)


def drained(*, session, job, now) -> None:
    """A draining kind's row: the one marked `poison` kills its worker, the others take effect."""
    if job.payload.get("poison"):
        kills_its_worker(session=session, job=job, now=now)
    record_effect(session=session, job=job, now=now)


def batched(*, session, job, now) -> None:
    """A row of a kind that runs in batches: `poison` kills its worker, `stall` (seconds) holds its
    first attempt that long, having created the file `stalled` (a batch a test kills in its middle,
    told without reading the database, which SQLite would make it wait for), `fail_times` fails its
    first attempts (0 by default); each takes effect."""
    if job.payload.get("poison"):
        kills_its_worker(session=session, job=job, now=now)
    if job.attempts == 1 and job.payload.get("stall"):
        Path(job.payload["stalled"]).touch()
        time.sleep(job.payload["stall"])
    record_effect(session=session, job=job, now=now)  # rolled back with a failure
    if job.attempts <= job.payload.get("fail_times", 0):
        raise RuntimeError(f"batched failure on attempt {job.attempts}")


def held(*, session, job, now) -> None:
    """Says which host holds it, a file `<hostname>.<job id>.<attempt>` in the payload's `marks`
    directory (the hosts share a filesystem, tests/hosts.py), then takes effect after its `sleep`:
    a test cuts that host off or kills it while the work is in its hands."""
    Path(job.payload["marks"], f"{socket.gethostname()}.{job.id}.{job.attempts}").touch()
    record_effect(session=session, job=job, now=now)


@dataclass(frozen=True)
class TestEvent(Event):
    """The tests' own event, consumed by consume_test_event: `bad` fails it, `kills` kills its worker."""

    NAME = "test.event"
    bad: bool = False
    kills: bool = False


TEST_EVENT = TestEvent.NAME
EVENT_EFFECT = "test.event_effect"
CONSUMER_FIXED = "followup:test:consumer-fixed"  # a Redis key: set, the consumer takes `bad` events too


def consume_test_event(*, session, event, now) -> None:
    """An event consumer with one audit row (subject event:<id>) per event it processed; it raises on
    a TestEvent that says `bad` until the test sets CONSUMER_FIXED, and kills its worker on one that
    says `kills`."""
    if event.data.bad and not session.database.redis.exists(CONSUMER_FIXED):
        raise RuntimeError(f"the consumer cannot take event {event.id}")
    if event.data.kills:  # as a batch killed for its time limit, or by the OOM killer
        os.kill(os.getpid(), signal.SIGKILL)
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=event.clinic_id,
            actor="system",
            action=EVENT_EFFECT,
            subject_type="event",
            subject_id=event.id,
            at=now,
        ),
    )


FINISHES = []  # the sizes of test.collected's calls, in this process


def collected(*, session, jobs, now) -> None:
    """A kind run `together` (as re-scoring is): its rows of one transaction done in one call;
    `finish_fails` makes that call fail while it holds this row (on its first `finish_fails` attempts)."""
    FINISHES.append(len(jobs))
    for job in jobs:
        if job.attempts <= job.payload.get("finish_fails", 0):
            raise RuntimeError(f"finish failed on attempt {job.attempts}")
        record_effect(session=session, job=job, now=now)


BATCH = 20  # test.batched's batch size
DRAIN_BATCH = 4  # test.drained_batched's: a draining kind whose drainer takes rows that many at once

# Added to the engine of every app the tests build (tests/conftest.py `test_settings`) and of their
# worker processes (FOLLOWUP_PLUGINS): app/bootstrap.py reads these two names.
JOB_KINDS = [
    JobKind(EFFECT, record_effect),
    JobKind("test.notify", record_effect, queue="notifications"),
    JobKind("test.flaky", flaky),
    JobKind("test.fails", always_fails),
    JobKind("test.chain", chain),
    JobKind("test.kills", kills_its_worker),
    JobKind("test.drained", drained, drain=True),
    JobKind("test.drained_later", drained, drain=True, due_later=True),
    JobKind("test.batched", batched, batch=BATCH),
    JobKind("test.drained_batched", batched, drain=True, batch=DRAIN_BATCH),
    JobKind("test.collected", collected, drain=True, batch=DRAIN_BATCH, together=True),
    JobKind("test.bulk_yields", record_effect, queue="bulk", yields=True),
    JobKind("test.bulk", record_effect, queue="bulk"),
    JobKind("test.timers_yield", batched, queue="timers", batch=BATCH, yields=True),
    JobKind("test.held", held),
]
EVENT_HANDLERS = {TestEvent: [consume_test_event]}
