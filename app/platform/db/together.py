"""Independent reads of one unit of work run at once, each on a connection of its own, all reading one
snapshot: what a report over a long range does with its statements that need not wait for each
other (speed to lead's split by coordinator and by source; follow-up's tasks and messages), so the
request takes about the longest of them instead of their sum when the server has a core free.

PostgreSQL: the unit's connection exports its snapshot once (`pg_export_snapshot()`, kept for the
rest of its transaction in the connection's `info`); each read opens a REPEATABLE READ, READ ONLY
transaction on a pooled connection, imports that snapshot (`SET TRANSACTION SNAPSHOT`) before
anything else, runs `prepare` (the reports' planner settings) and its statement, and ends. Every
read sees exactly the rows the others see, whatever commits meanwhile: the figures are those the
statements give one after the other in one REPEATABLE READ transaction. Reads needing the unit's own
uncommitted writes do not belong here (another transaction cannot see them). A single statement
runs on the unit itself, unless the unit has read together already (then in that snapshot, so a
report's figures read after its reads together agree with them).
Elsewhere (SQLite), and behind a transaction pooler (PgBouncer: `_behind_pooler`), the statements
run one after the other on the unit.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import sqlalchemy as sa

# Threads wait on the server (psycopg releases the GIL). Each call has its own few, not a pool every
# request shares: one clinic's long reports never queue another clinic's reads (each read waits only
# for a connection of the engine's pool, as any request does).
_MOST_AT_ONCE = 4
_SNAPSHOT = "db.together.snapshot"


class Reads:
    """Reads begun by `read_later`: their rows once asked for (waiting for those still running)."""

    def __init__(self, pending: list):
        self._pending = pending

    def rows(self) -> list[list]:
        return [read.result() if isinstance(read, Future) else read for read in self._pending]


def read_together(session, statements: list, prepare: Callable | None = None) -> list[list]:
    """The rows of each of `statements` (in their order), read at once in the unit's snapshot;
    `prepare(connection)` runs first on each reading connection (session settings: SET LOCAL)."""
    if len(statements) < 2 and not _exported(session):
        return [session.execute(statement).all() for statement in statements]
    return read_later(session, statements, prepare).rows()


def read_later(session, statements: list, prepare: Callable | None = None) -> Reads:
    """`read_together`'s reads begun, even a lone one, and the caller's work goes on meanwhile (more
    reads, on the unit or together): their rows from `.rows()`. Where they run one after the other,
    they are done before this returns."""
    dialect = session.get_bind().dialect
    if not statements or dialect.name != "postgresql" or _behind_pooler(dialect):
        return Reads([session.execute(statement).all() for statement in statements])
    snapshot, engine = exported_snapshot(session), session.get_bind()
    readers = ThreadPoolExecutor(min(len(statements), _MOST_AT_ONCE), thread_name_prefix="db-together")
    pending = [readers.submit(_read, engine, snapshot, statement, prepare) for statement in statements]
    readers.shutdown(wait=False)  # its threads end once these reads are done
    return Reads(pending)


def exported_snapshot(session) -> str:
    """The id of the unit's current transaction's snapshot, exported once per transaction (kept in
    its connection's `info`, with the transaction it belongs to)."""
    connection = session.connection()  # the transaction begun, if it was not
    transaction = connection.get_transaction()
    kept = connection.info.get(_SNAPSHOT)
    if kept is None or kept[0] is not transaction:
        kept = (transaction, connection.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one())
        connection.info[_SNAPSHOT] = kept
    return kept[1]


def _behind_pooler(dialect) -> bool:
    """Whether the engine reaches PostgreSQL through a transaction pooler (told, or found: the
    dialect of engine.py): there the unit's transaction holds one of the pooler's few server
    sessions while its reads wait for others, which the other units' transactions may hold for the
    same wait. Its reads then run one after the other."""
    return not getattr(dialect, "server_prepared", True) or bool(getattr(dialect, "pooler_found", False))


def _exported(session) -> bool:
    """Whether the unit's current transaction has exported its snapshot (then a lone read joins it)."""
    connection = session.connection()
    kept = connection.info.get(_SNAPSHOT)
    return kept is not None and kept[0] is connection.get_transaction()


def _read(engine: sa.Engine, snapshot: str, statement, prepare: Callable | None) -> list:
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with connection.begin():
            connection.execute(sa.text(f"SET TRANSACTION SNAPSHOT '{_quoted(snapshot)}'"))
            if prepare is not None:
                prepare(connection)
            return connection.execute(statement).all()


def _quoted(snapshot: str) -> str:
    """The id PostgreSQL gave (hex digits and dashes): checked, since it is spliced into the SQL
    (SET TRANSACTION SNAPSHOT takes no parameter)."""
    if not snapshot or any(c not in "0123456789ABCDEFabcdef-" for c in snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    return snapshot
