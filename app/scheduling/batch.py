"""Ledger rows by the thousand (bulk follow-ups): `schedule_many`'s contract, ids back instead of rows.

`schedule_many` sends every row as bound parameters of multi-row INSERTs and loads the created rows
as ORM objects. At thousands of rows, rendering those statements (psycopg rewrites each
multi-kilobyte query string, uncached) and loading the objects cost more CPU than the database spends
on the insert. On PostgreSQL this module sends each column as one array instead, so the statement
is short, the same every time, and the database unnests it: `INSERT ... SELECT FROM unnest(...)`.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from app.scheduling import queries, registry
from app.scheduling import service as scheduling
from app.scheduling.models import PENDING
from app.telemetry import tracing

_FIELDS = ("clinic_id", "subject_type", "subject_id", "max_attempts", "dedupe_key")


def schedule_ids(*, session: Session, jobs: list[dict], now: datetime) -> list[int]:
    """Like `scheduling.schedule_many` (same job dicts, dedupe, dispatch after commit); returns new ids."""
    if not queries.inserts_from_arrays(session):
        return [job.id for job in scheduling.schedule_many(session=session, jobs=jobs, now=now)]
    if not jobs:
        return []
    columns = _columns(jobs)
    session.flush()  # the rows may refer to objects still pending in this session
    params = {**columns, "status": PENDING, "now": now, "trace_parent": tracing.current_traceparent()}
    created = session.execute(queries.INSERT_FROM_ARRAYS, params).all()
    due_soon = scheduling.due_within_horizon(session, created, now)
    if due_soon:
        scheduling._dispatch_after_commit(session, due_soon, now)
    return [row.id for row in created]


def _columns(jobs: list[dict]) -> dict[str, list]:
    """The jobs as one list per column, checked as `schedule_many` checks them (kinds looked up once)."""
    queues: dict[str, str] = {}
    columns: dict[str, list] = {
        name: [] for name in (*_FIELDS, "kind", "queue", "payload", "due_at", "origin")
    }
    for job in jobs:
        name = job["kind"]
        if name not in queues:
            kind = registry.kind_of(name)
            if kind is None:
                raise ValueError(f"unknown job kind {name!r}: register its handler first")
            queues[name] = kind.queue
        if job["due_at"].tzinfo is None:
            raise ValueError("due_at must be timezone-aware")
        if not job.get("dedupe_key"):
            raise ValueError("every job needs a dedupe_key")
        for field in _FIELDS:
            columns[field].append(job.get(field))
        columns["kind"].append(name)
        columns["queue"].append(queues[name])
        columns["payload"].append(json.dumps(job.get("payload") or {}))
        columns["due_at"].append(job["due_at"])
        origin = job.get("origin")
        columns["origin"].append(None if origin is None else json.dumps(origin))
    return columns
