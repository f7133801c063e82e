"""A worker whose host clock runs 10 minutes fast (libfaketime): the database's clock is the time of
record, so a job due 8 s ahead runs neither early nor twice, and its stamps are not in the future."""

import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app.platform import clock
from app.platform.audit.models import AuditEvent
from app.platform.db import database_now
from tests.ledger import add_job, effects, job
from tests.reliability.conftest import WORKER_ENV, sweeping
from tests.reliability.handlers import EFFECT
from tests.requirements import need_faketime, need_postgres
from tests.workers import subprocess_worker, wait_for

FAKED = {"FAKETIME": "+10m", "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _environs(pids: list[int]) -> dict[int, dict[str, str]]:
    """The environment of each of `pids` still running (a child may end between the listing and the read)."""
    found = {}
    for pid in pids:
        try:
            found[pid] = _environ(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended between the listing and the read
            continue
    return found


def test_a_fast_worker_clock_fires_nothing_early(app, db, tenant, fast):
    settings = app.config["SETTINGS"]
    # SQLite reads the clock of each process that opens it: only a database server has one clock.
    need_postgres(settings.database_url, "a database clock apart from the worker hosts'")
    library = need_faketime()
    with subprocess_worker(settings, **WORKER_ENV, LD_PRELOAD=library, **FAKED) as worker, sweeping(app):
        # The pool's children run the handlers: they are faked too.
        children = wait_for(lambda: _environs(_children(worker.pid)), timeout=60)
        assert all(environ.get("LD_PRELOAD") == library for environ in children.values())
        assert _environ(worker.pid).get("FAKETIME") == "+10m"
        due_at = database_now(db) + timedelta(seconds=8)
        # Beyond the horizon: promoted a few seconds before due, its message's eta due_at (already past by
        # the worker's clock).
        job_id = add_job(db, tenant, EFFECT, due_at, "fast-clock")
        # A row may run this much before its due time (the runner's tolerance), never more.
        earliest = due_at - timedelta(seconds=fast.job_early_tolerance_seconds)
        early = []
        while database_now(db) < earliest:
            early.append(effects(db)[0])
            time.sleep(0.2)
        wait_for(lambda: effects(db)[0] >= 1, timeout=60)
        time.sleep(2)  # a second run, if there were one, lands

    assert not any(early), "the job ran before its due time by the database's clock"
    assert effects(db) == (1, 1)
    row = job(db, job_id)
    checked = database_now(db)
    assert earliest <= row.finished_at <= checked
    with db.unit_of_work() as session:
        [stamped] = session.scalars(sa.select(AuditEvent.at).where(AuditEvent.action == EFFECT)).all()
    assert earliest <= stamped <= checked
    assert clock.now() - checked < timedelta(minutes=1)  # this process is not faked
