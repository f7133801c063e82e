"""Assignment's statements that depend on the database: who is available, the rotation's turn (one
statement on PostgreSQL, committed by itself), the availability lock."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from app.domains.assignment import rules
from app.domains.assignment.models import AssignmentCursor
from app.domains.auth.models import Clinic, User
from app.platform.db import Frozen, UnitOfWork, autocommit
from app.platform.roles import Role

_USERS = User.__table__
_CURSORS = AssignmentCursor.__table__
_CLINICS = Clinic.__table__
CLINIC_SCOPE = "clinic"  # the clinic's own rotation (the source policy has one per source)

# A memo of compiled SQL, a pure function of the code and the schema: no engine's state (app/bootstrap.py).
_AVAILABLE: dict[tuple[str, ...], Frozen] = {}
# Who can be given leads: the one definition the pool reads.
IS_AVAILABLE = (_USERS.c.active.is_(True), _USERS.c.out_of_office.is_(False))


def _available_statement(roles) -> Frozen:
    # Built once per set of roles (literals, not an expanding IN): it runs for every new lead.
    key = tuple(sorted(str(role) for role in roles))
    if key not in _AVAILABLE:
        _AVAILABLE[key] = Frozen(
            sa.select(_USERS.c.id, _USERS.c.max_open_leads)
            .where(
                _USERS.c.clinic_id == sa.bindparam("clinic_id"),
                *IS_AVAILABLE,
                _USERS.c.role.in_([sa.literal_column(f"'{role}'") for role in key]),
            )
            .order_by(_USERS.c.id)
        )
    return _AVAILABLE[key]


def available(session: UnitOfWork, clinic_id: int, roles) -> list[tuple[int, int | None]]:
    """(id, max_open_leads) of the clinic's active, in-office users of `roles`, by id."""
    return _available_statement(roles).execute(session.connection(), {"clinic_id": clinic_id})


def _lock_statement(dialect: str):
    # Built once per dialect, with bound parameters: it runs for every new lead. The no-op
    # DO UPDATE (rather than DO NOTHING) locks the existing row and returns it, so creating,
    # locking and reading the rotation is one round trip instead of three.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_CURSORS).values(
        clinic_id=sa.bindparam("b_clinic_id"),
        scope=sa.bindparam("b_scope"),
        last_user_id=None,
        updated_at=sa.bindparam("b_now", type_=_CURSORS.c.updated_at.type),
    )
    return stmt.on_conflict_do_update(
        index_elements=["clinic_id", "scope"], set_={"last_user_id": _CURSORS.c.last_user_id}
    ).returning(_CURSORS.c.last_user_id)


_LOCK = {"postgresql": Frozen(_lock_statement("postgresql")), "sqlite": Frozen(_lock_statement("sqlite"))}
_ADVANCE = (
    sa.update(_CURSORS)
    .where(_CURSORS.c.clinic_id == sa.bindparam("b_clinic_id"), _CURSORS.c.scope == sa.bindparam("b_scope"))
    .values(last_user_id=sa.bindparam("b_user_id"), updated_at=sa.bindparam("b_now"))
)


def last_turn(session: UnitOfWork, clinic_id: int, scope: str, now: datetime) -> int | None:
    """Who the scope's rotation served last; its row is created if missing and locked until the
    transaction ends (the lock that serialises automatic assignments in the clinic)."""
    connection = session.connection()
    params = {"b_clinic_id": clinic_id, "b_scope": scope, "b_now": now}
    [(last_user_id,)] = _LOCK[connection.dialect.name].execute(connection, params)
    return last_user_id


def advance(session: UnitOfWork, clinic_id: int, scope: str, user_id: int, now: datetime) -> None:
    """Record that `user_id` had the scope's turn (its row is already locked by `last_turn`)."""
    params = {"b_clinic_id": clinic_id, "b_scope": scope, "b_user_id": user_id, "b_now": now}
    session.execute(_ADVANCE, params)


# PostgreSQL: a round-robin turn is taken in a transaction of its own, one statement on a
# connection in autocommit, that commits without waiting for the disk (set_config(..., true) lasts
# as long as that transaction). The cursor row is locked for that statement only, not until the new
# lead's transaction commits, so concurrent captures of one clinic never queue behind each other's
# whole transaction (a lock held that long caps a clinic's capture rate). The cost: a capture that
# rolls back after its pick has used a turn, and a crash can forget the last turns taken (the
# rotation then resumes from an earlier coordinator): neither loses or doubles a lead.
_TURN = """
    INSERT INTO assignment_cursors (clinic_id, scope, last_user_id, updated_at)
    SELECT CAST(:clinic_id AS integer), CAST(:scope AS varchar), pool.ids[1], CAST(:now AS timestamptz)
    FROM pool, (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_waiting_for_disk
    WHERE pool.ids IS NOT NULL
    ON CONFLICT (clinic_id, scope) DO UPDATE SET
        last_user_id = coalesce(
            (SELECT min(id) FROM pool, unnest(pool.ids) AS pool_id (id)
             WHERE id > assignment_cursors.last_user_id),
            (SELECT ids[1] FROM pool)
        ),
        updated_at = excluded.updated_at
    RETURNING last_user_id, (SELECT fallback FROM pool) AS fallback
"""
_TAKE_TURN = Frozen(
    sa.text("WITH pool AS (SELECT CAST(:pool AS integer[]) AS ids, false AS fallback)" + _TURN).bindparams(
        sa.bindparam("now", type_=_CURSORS.c.updated_at.type)
    )
)


def take_turn(session: UnitOfWork, clinic_id: int, scope: str, pool_ids: list[int], now: datetime) -> int:
    """The next of `pool_ids` in the scope's rotation, the turn recorded (see _TAKE_TURN)."""
    if session.get_bind().dialect.name != "postgresql":
        chosen = rules.round_robin(pool_ids, last_turn(session, clinic_id, scope, now))
        advance(session, clinic_id, scope, chosen, now)
        return chosen
    params = {"clinic_id": clinic_id, "scope": scope, "pool": sorted(pool_ids), "now": now}
    with autocommit(session.get_bind()).connect() as connection:  # the turn is taken for good
        [(chosen, _)] = _TAKE_TURN.execute(connection, params)
    return chosen


# The round-robin policy's whole pick in that one statement: the pool is read there too (after
# the availability lock, which the caller's transaction took before: see hold_availability).
# Available treatment coordinators, else clinic admins (fallback), else nobody (no row returned).
def _available_ids(role: str) -> str:
    """SQL for the text statement below: the ids of the clinic's available users of `role`, as
    one array (NULL if none), less :exclude. Built from the same conditions as the pool read."""
    ids = sa.func.array_agg(postgresql.aggregate_order_by(_USERS.c.id, _USERS.c.id)).label("ids")
    select = sa.select(ids).where(
        _USERS.c.clinic_id == sa.bindparam("clinic_id"),
        *IS_AVAILABLE,
        _USERS.c.role == sa.literal_column(f"'{role}'"),
        _USERS.c.id != sa.all_(sa.cast(sa.bindparam("exclude"), postgresql.ARRAY(sa.Integer))),
    )
    # Rendered without bind casts (`:clinic_id`, not `:clinic_id::INTEGER`, which text() would not
    # read as a parameter): the psycopg2 dialect's rendering, SQLAlchemy 2.0's default and not 2.1's.
    return str(select.compile(dialect=postgresql.psycopg2.dialect(paramstyle="named")))


def _round_robin_turn_sql() -> str:
    """The round-robin turn, pool and rotation in one statement."""
    return (
        f"""
        WITH coordinators AS ({_available_ids(Role.TREATMENT_COORDINATOR.value)}),
        admins AS ({_available_ids(Role.CLINIC_ADMIN.value)}),
        pool AS (
            SELECT coalesce(coordinators.ids, admins.ids) AS ids, coordinators.ids IS NULL AS fallback
            FROM coordinators, admins
        )
        """
        + _TURN
    )


_NOW = sa.bindparam("now", type_=_CURSORS.c.updated_at.type)
_TAKE_ROUND_ROBIN_TURN = Frozen(sa.text(_round_robin_turn_sql()).bindparams(_NOW))


def round_robin_in_one_statement(session) -> bool:
    """Whether the round-robin policy's pool and turn are one statement here (PostgreSQL)."""
    return session.get_bind().dialect.name == "postgresql"


def take_round_robin_turn(
    session, clinic_id: int, scope: str, exclude: set[int], now: datetime
) -> tuple[int, bool] | None:
    """PostgreSQL, round-robin policy: (chosen, whether a clinic admin for want of a coordinator),
    None if nobody is available: pool and turn in one round trip, committed at once."""
    params = {"clinic_id": clinic_id, "scope": scope, "exclude": sorted(exclude), "now": now}
    with autocommit(session.get_bind()).connect() as connection:
        rows = _TAKE_ROUND_ROBIN_TURN.execute(connection, params)
    if not rows:
        return None
    [(chosen, fallback)] = rows
    return chosen, fallback


# Availability (who is active and in office) and automatic picks: a pick holds this lock shared
# from before it reads who is available until its transaction ends; a hand-over (someone went out
# of office) takes it exclusively, so it waits for the picks under way (and then moves the leads
# they gave the absent user) and the picks after it see the change. Shared holders do not wait
# for one another. On SQLite every writing transaction is serialised anyway.
_AVAILABILITY_LOCK_SPACE = 0x464C  # the first key of pg_advisory_xact_lock(key1, key2): "FL"
_HOLD_AVAILABILITY = {
    shared: Frozen(sa.text(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(:space, :clinic_id)"))
    for shared in (True, False)
}


def hold_availability(session, clinic_id: int, *, shared: bool = True) -> None:
    """Take the clinic's availability lock until the transaction ends (see above)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    params = {"space": _AVAILABILITY_LOCK_SPACE, "clinic_id": clinic_id}
    _HOLD_AVAILABILITY[shared].execute(session.connection(), params)


def availability_lock(clinic_id: sa.ColumnElement[int]) -> sa.ColumnElement:
    """PostgreSQL: the availability lock (shared) as a column of the caller's first read of a
    transaction that will pick an owner, one round trip fewer; the caller then tells the pick so
    (`pick_new_owner(availability_held=True)`). The pool is read by a later statement, so after the
    lock, as it must."""
    return sa.func.pg_advisory_xact_lock_shared(sa.literal(_AVAILABILITY_LOCK_SPACE), clinic_id)


# The owner a new lead was given is still available as the lead is written. A hand-over waits for
# the picks under way (the availability lock), but a change of the user's row already in flight
# when the pick read the pool is not seen by that read: this statement waits for it (FOR SHARE on
# the row) and checks the condition again on the row's newest version (READ COMMITTED). On a
# connection of its own, committed at once: the row lock must not outlive the check, or a hand-over
# would wait on the row before it reaches the availability lock it must wait on.
_STILL_AVAILABLE = Frozen(
    sa.select(_USERS.c.id)
    .where(_USERS.c.id == sa.bindparam("user_id"), *IS_AVAILABLE)
    .with_for_update(read=True)
)


def still_available(session, user_id: int) -> bool:
    """Whether `user_id` is available now (PostgreSQL; SQLite serialises every writer, so the
    pick's read stands)."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    with autocommit(session.get_bind()).connect() as connection:
        return bool(_STILL_AVAILABLE.execute(connection, {"user_id": user_id}))
