"""Health checks, heartbeats, and the database's upkeep (statistics, dead rows)."""

from __future__ import annotations

import contextlib
from datetime import datetime

import sqlalchemy as sa

from app.domains.ops import queries
from app.domains.ops.models import Heartbeat
from app.platform.db import Database, UnitOfWork


def record_heartbeat(*, session: UnitOfWork, name: str, now: datetime, detail: str | None = None) -> None:
    """Upsert the heartbeat row `name` (a worker proves it consumes tasks and can write)."""
    beat = session.get(Heartbeat, name)
    if beat is None:
        session.add(Heartbeat(name=name, at=now, detail=detail))
    else:
        beat.at, beat.detail = now, detail


SWEEP_RUN = "sweep:"  # the heartbeat rows of beat's sweeps: when each last finished


def record_sweep_run(*, session: UnitOfWork, task: str, now: datetime) -> None:
    """Beat's sweep `task` finished a run at `now` (ops see when each sweep last ran)."""
    record_heartbeat(session=session, name=SWEEP_RUN + task, now=now)


def heartbeats(*, session: UnitOfWork) -> dict[str, datetime]:
    """The processes' heartbeats (each queue's workers, as beat asks them), by name."""
    rows = session.scalars(sa.select(Heartbeat).where(Heartbeat.name.not_like(SWEEP_RUN + "%")))
    return {b.name: b.at for b in rows}


def sweep_runs(*, session: UnitOfWork) -> dict[str, datetime]:
    """When each of beat's sweeps last finished a run, by task name."""
    rows = session.scalars(sa.select(Heartbeat).where(Heartbeat.name.like(SWEEP_RUN + "%")))
    return {b.name.removeprefix(SWEEP_RUN): b.at for b in rows}


def refresh_statistics(*, db: Database, floor: int = 50) -> list[str]:
    """ANALYZE each table whose rows changed by more than `floor` + `statistics_growth` (1.0) of its
    rows since its last ANALYZE (PostgreSQL; elsewhere nothing); returns the tables analysed.

    The planner's estimates come from these statistics. Autovacuum keeps them by the same rule, but
    only where it is on, and only after its nap (a minute by default): a database just migrated has
    none, and its hot tables grow from empty by thousands of rows a minute, planned as if they were
    still empty. The beat sweep (`ops.refresh_statistics`) refreshes them itself, whatever the
    server's autovacuum settings; where autovacuum did it first, the sweep finds nothing to do.

    Once a table's rows doubled, not every 10% as autovacuum's rule: a table filling from empty is
    analysed at 50, 150, 350... rows, soon enough for its plans, and a big one seldom. Each ANALYZE
    makes every backend plan again the statements on the table: at 10% a busy table would be
    analysed every few seconds, and each time a new lead's realtime job would wait on the burst.
    """
    fraction = db.settings.statistics_growth
    with db.single_statement() as conn:
        stale = queries.tables_with_stale_statistics(conn, floor=floor, fraction=fraction)
    for table in stale:
        # A transaction of its own for each: its pacing lasts just that ANALYZE (see _pace), and
        # the table's lock is not held while the next one is sampled.
        with db.engine.begin() as conn:
            _pace(conn, db.settings)
            queries.analyze(conn, table)
    return stale


def _pace(conn, settings) -> None:
    """Upkeep that leaves the cores to a new lead's processing: ANALYZE samples `statistics_target`
    x 300 rows (the server's default target costs a big table several times the CPU), and ANALYZE
    and VACUUM sleep `upkeep_cost_delay_ms` after each share of page work, as autovacuum's own do
    by default. An upkeep statement holding a core leaves the realtime path too little of a small
    machine, and new leads wait."""
    queries.pace_this_transaction(
        conn, cost_delay_ms=settings.upkeep_cost_delay_ms, statistics_target=settings.statistics_target
    )


def vacuum_dead_rows(*, db: Database) -> list[str]:
    """VACUUM each table holding more dead row versions than `vacuum_dead_floor` +
    `vacuum_dead_fraction` of its live rows (PostgreSQL; elsewhere nothing); returns the tables.

    The ledger's and the events' rows are each updated as they run (pending, dispatched, done;
    processed), leaving a dead version each time, several for every new lead.
    The realtime path finds its next rows through partial indexes on the live ones, whose entries
    for dead versions stay until a VACUUM removes them: without one a new lead's job gets slower
    minute by minute. Autovacuum does it only where it is
    on, and by default only once a fifth of a table is dead; the sweep does it whatever the
    server's settings. Where autovacuum did it first, the sweep finds nothing to do.
    """
    settings = db.settings
    with db.single_statement() as conn:
        dead = queries.tables_with_dead_rows(
            conn, floor=settings.vacuum_dead_floor, fraction=settings.vacuum_dead_fraction
        )
        with _vacuum_paced(conn, settings):
            for table in dead:
                queries.vacuum(conn, table)
    return dead


def _vacuum_paced(conn, settings):
    """VACUUM paced as `_pace` paces ANALYZE, where it can be.

    VACUUM cannot run in a transaction, so its pacing is a session setting, set before and reset
    after. Behind a transaction pooler (FOLLOWUP_DATABASE_POOLER=transaction) each of those
    statements may run on another server session, and the setting would stay on one that another
    client gets next: there VACUUM runs at the pace the server gives it (`vacuum_cost_delay`, 0 by
    default; an operator may set it for the application's role, where it paces nothing but VACUUM
    and ANALYZE: docs/operations/pgbouncer.md)."""
    if settings.database_pooler == "transaction":
        return contextlib.nullcontext()
    return queries.session_paced(conn, cost_delay_ms=settings.upkeep_cost_delay_ms)


def readiness(*, db: Database, redis, broker_check=None) -> dict[str, str]:
    """'ok' or the error for each dependency the system needs to do its work.

    `broker_check`: connects to a broker that is not the Redis (RabbitMQ), which is then checked
    on its own as `redis` (rate limits, login throttling, drain flags live there)."""
    checks: dict[str, str] = {}
    try:
        with db.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"error: {exc.__class__.__name__}: {exc}"[:300]
    checks["broker"] = _check(broker_check or redis.ping)
    if broker_check is not None:
        checks["redis"] = _check(redis.ping)
    return checks


def _check(probe) -> str:
    try:
        probe()
        return "ok"
    except Exception as exc:  # any failure means not ready; say which
        return f"error: {exc.__class__.__name__}: {exc}"[:300]
