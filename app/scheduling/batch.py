"""Ledger rows by the thousand (bulk follow-ups): `schedule_many`'s contract, ids back instead of rows.

`schedule_many` loads the created rows as ORM objects; at thousands of rows that costs more CPU than
the database spends on the insert. Both send each column as one array on PostgreSQL (the statement
is short, the same every time, and the database unnests it: `INSERT ... SELECT FROM unnest(...)`,
`queries.insert_ids`); this one reads back only the new rows' ids and due times.
"""

from __future__ import annotations

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
    created = queries.insert_ids(session, _rows(jobs, now, tracing.current_traceparent()))
    due_soon = scheduling.due_within_horizon(session, created, now)
    if due_soon:
        scheduling.dispatch_after_commit(session, due_soon, now)
    return [row.id for row in created]


def _rows(jobs: list[dict], now: datetime, trace_parent: str | None) -> list[dict]:
    """The jobs as rows (values by column), checked as `schedule_many` checks them (kinds looked up once)."""
    queues: dict[str, str] = {}
    rows = []
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
        row = {field: job.get(field) for field in _FIELDS}
        row.update(
            kind=name,
            queue=queues[name],
            payload=job.get("payload") or {},
            due_at=job["due_at"],
            origin=job.get("origin"),
            status=PENDING,
            created_at=now,
            trace_parent=trace_parent,
        )
        rows.append(row)
    return rows
