"""Use cases of assignment: choose an owner by the clinic's policy, assign, hand over.

Policies (`clinic.assignment_policy`):
- round_robin: available treatment coordinators in turn (the turn is persisted per clinic);
- capacity: the available coordinator with the fewest open leads below their `max_open_leads`;
  when all are full, the least loaded one, and the reason says so;
- source: the lead source's mapped coordinators in turn; none available → round_robin.
Available means active and not out of office. With no available treatment coordinator, a clinic
admin takes the lead; with nobody at all the lead stays as it is and the timeline says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.activities import service as activities
from app.activities.models import ActivityType
from app.assignment import rules
from app.assignment.models import AssignmentCursor
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.auth import service as auth
from app.auth.models import Clinic, User
from app.auth.roles import Actor, Role
from app.db import Frozen, RowBatch, autocommit, in_autocommit
from app.errors import ValidationFailed
from app.events import service as events
from app.leads import service as leads
from app.leads.models import Lead, LeadSource
from app.leads.rules import COORDINATOR_ROLES

CLINIC_SCOPE = "clinic"


@dataclass(frozen=True)
class Pick:
    """The chosen owner (None: nobody available) and why."""

    user_id: int | None
    reason: str


_USERS = User.__table__
_CURSORS = AssignmentCursor.__table__


_AVAILABLE: dict[tuple[str, ...], Frozen] = {}
# Who can be given leads: the one definition the pool reads and the owner guard below share.
_IS_AVAILABLE = (_USERS.c.active.is_(True), _USERS.c.out_of_office.is_(False))


class _Available(NamedTuple):
    id: int
    max_open_leads: int | None


def _available_statement(roles) -> Frozen:
    # Built once per set of roles (literals, not an expanding IN): it runs for every new lead.
    key = tuple(sorted(str(role) for role in roles))
    if key not in _AVAILABLE:
        _AVAILABLE[key] = Frozen(
            sa.select(_USERS.c.id, _USERS.c.max_open_leads)
            .where(
                _USERS.c.clinic_id == sa.bindparam("clinic_id"),
                *_IS_AVAILABLE,
                _USERS.c.role.in_([sa.literal_column(f"'{role}'") for role in key]),
            )
            .order_by(_USERS.c.id)
        )
    return _AVAILABLE[key]


def _available(session: Session, clinic_id: int, roles, exclude: set[int]) -> list[_Available]:
    """(id, max_open_leads) of the clinic's active, in-office users of `roles`, by id."""
    rows = _available_statement(roles).execute(session.connection(), {"clinic_id": clinic_id})
    return [_Available(*row) for row in rows if row[0] not in exclude]


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


def _last_turn(session: Session, clinic_id: int, scope: str, now: datetime) -> int | None:
    """Who the scope's rotation served last; its row is created if missing and locked until the
    transaction ends (the lock that serialises automatic assignments in the clinic)."""
    connection = session.connection()
    params = {"b_clinic_id": clinic_id, "b_scope": scope, "b_now": now}
    [(last_user_id,)] = _LOCK[connection.dialect.name].execute(connection, params)
    return last_user_id


def _advance_in_batch_statement(dialect: str) -> sa.Insert:
    # The same change as _ADVANCE in the shape of an insert, which a RowBatch can carry: the row
    # exists (and is locked by _last_turn), so the upsert always updates it.
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(_CURSORS)
    return insert.on_conflict_do_update(
        index_elements=["clinic_id", "scope"],
        set_={"last_user_id": insert.excluded.last_user_id, "updated_at": insert.excluded.updated_at},
    )


_ADVANCE_IN_BATCH = {
    "postgresql": _advance_in_batch_statement("postgresql"),
    "sqlite": _advance_in_batch_statement("sqlite"),
}


def _advance(
    session: Session, clinic_id: int, scope: str, user_id: int, now: datetime, batch: RowBatch | None = None
) -> None:
    """Record that `user_id` had the scope's turn (its row is already locked by `_last_turn`); with
    a `batch`, as part of it (a new lead's rows)."""
    if batch is not None:
        values = {"clinic_id": clinic_id, "scope": scope, "last_user_id": user_id, "updated_at": now}
        batch.add_values(_ADVANCE_IN_BATCH[session.get_bind().dialect.name], values)
        return
    params = {"b_clinic_id": clinic_id, "b_scope": scope, "b_user_id": user_id, "b_now": now}
    session.execute(_ADVANCE, params)


# PostgreSQL: a round-robin turn is taken in a transaction of its own, one statement on a
# connection in autocommit, that commits without waiting for the disk (set_config(..., true) lasts
# as long as that transaction). The cursor row is locked for that statement only, not until the new
# lead's transaction commits: concurrent captures of one clinic no longer queue behind each other's
# whole transaction (that lock capped a clinic at about 300 new leads/s). The cost: a capture that
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
    RETURNING last_user_id, (SELECT fallback FROM pool)
"""
_TAKE_TURN = Frozen(
    sa.text("WITH pool AS (SELECT CAST(:pool AS integer[]) AS ids, false AS fallback)" + _TURN).bindparams(
        sa.bindparam("now", type_=_CURSORS.c.updated_at.type)
    )
)


# The round-robin policy's whole pick in that one statement: the pool is read there too (after
# the availability lock, which the caller's transaction took before: see _hold_availability).
# Available treatment coordinators, else clinic admins (fallback), else nobody (no row returned).
def _available_ids(role: str) -> str:
    """SQL for the text statement below: the ids of the clinic's available users of `role`, as
    one array (NULL if none), less :exclude. Built from the same conditions as the pool read."""
    ids = sa.func.array_agg(postgresql.aggregate_order_by(_USERS.c.id, _USERS.c.id)).label("ids")
    select = sa.select(ids).where(
        _USERS.c.clinic_id == sa.bindparam("clinic_id"),
        *_IS_AVAILABLE,
        _USERS.c.role == sa.literal_column(f"'{role}'"),
        _USERS.c.id != sa.all_(sa.cast(sa.bindparam("exclude"), postgresql.ARRAY(sa.Integer))),
    )
    return str(select.compile(dialect=postgresql.dialect(paramstyle="named")))


_TAKE_ROUND_ROBIN_TURN = Frozen(
    sa.text(
        f"""
        WITH coordinators AS ({_available_ids(Role.TREATMENT_COORDINATOR.value)}),
        admins AS ({_available_ids(Role.CLINIC_ADMIN.value)}),
        pool AS (
            SELECT coalesce(coordinators.ids, admins.ids) AS ids, coordinators.ids IS NULL AS fallback
            FROM coordinators, admins
        )
        """
        + _TURN
    ).bindparams(
        sa.bindparam("now", type_=_CURSORS.c.updated_at.type),
    )
)
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


_HELD = "assignment.availability_held"  # session.info: clinics whose lock the transaction holds shared


def _hold_availability(session: Session, clinic_id: int, *, shared: bool = True) -> None:
    connection = session.connection()
    if connection.dialect.name != "postgresql" or in_autocommit(session):
        return  # autocommit: a lock would end with its statement; the caller guards instead
    if shared and clinic_id in _clinics_held(session):
        return
    params = {"space": _AVAILABILITY_LOCK_SPACE, "clinic_id": clinic_id}
    _HOLD_AVAILABILITY[shared].execute(connection, params)


def availability_lock(clinic_id: sa.ColumnElement[int]) -> sa.ColumnElement:
    """PostgreSQL: the availability lock (shared) as a column of the caller's first read of a
    transaction that will pick an owner, one round trip fewer; then say so with
    `availability_held`. The pool is read by a later statement, so after the lock, as it must."""
    return sa.func.pg_advisory_xact_lock_shared(sa.literal(_AVAILABILITY_LOCK_SPACE), clinic_id)


def availability_held(session: Session, clinic_id: int) -> None:
    """The session's transaction holds the clinic's availability lock (see `availability_lock`)."""
    _clinics_held(session).add(clinic_id)


def _clinics_held(session: Session) -> set[int]:
    # Kept with the transaction it was taken in: a later transaction of the session holds nothing.
    transaction, clinic_ids = session.info.get(_HELD, (None, set()))
    if transaction is not session.get_transaction():
        transaction, clinic_ids = session.info[_HELD] = (session.get_transaction(), set())
    return clinic_ids


def _take_turn(
    session: Session, clinic_id: int, scope: str, pool_ids: list[int], now: datetime, batch: RowBatch | None
) -> int:
    """The next of `pool_ids` in the scope's rotation, the turn recorded (see _TAKE_TURN)."""
    if session.get_bind().dialect.name != "postgresql":
        chosen = rules.round_robin(pool_ids, _last_turn(session, clinic_id, scope, now))
        _advance(session, clinic_id, scope, chosen, now, batch)
        return chosen
    params = {"clinic_id": clinic_id, "scope": scope, "pool": sorted(pool_ids), "now": now}
    with autocommit(session.get_bind()).connect() as connection:
        [(chosen, _)] = _TAKE_TURN.execute(connection, params)
    return chosen


_NOBODY = "no available treatment coordinator or clinic admin (all inactive or out of office)"
_ADMIN_FALLBACK = "; no available treatment coordinator, so a clinic admin"


def _round_robin_in_one_statement(session: Session, clinic_id: int, exclude: set[int], now: datetime) -> Pick:
    """PostgreSQL, round-robin policy: pool and turn in one round trip (see _TAKE_ROUND_ROBIN_TURN)."""
    params = {"clinic_id": clinic_id, "scope": CLINIC_SCOPE, "exclude": sorted(exclude), "now": now}
    if in_autocommit(session):  # the session's own connection commits the turn at once
        rows = _TAKE_ROUND_ROBIN_TURN.execute(session.connection(), params)
    else:
        with autocommit(session.get_bind()).connect() as connection:
            rows = _TAKE_ROUND_ROBIN_TURN.execute(connection, params)
    if not rows:
        return Pick(None, _NOBODY)
    [(chosen, fallback)] = rows
    return Pick(chosen, f"round robin{_ADMIN_FALLBACK if fallback else ''}")


def pick_owner(
    *,
    session: Session,
    clinic: Clinic,
    source_id: int,
    now: datetime,
    exclude_user_ids: tuple[int, ...] = (),
    batch: RowBatch | None = None,
) -> Pick:
    """Choose who should own a lead of `source_id` under the clinic's policy (records the turn, in
    `batch` if given; assigns nothing)."""
    exclude = set(exclude_user_ids)
    if in_autocommit(session) and not picks_without_transaction(clinic):
        raise RuntimeError(f"the {clinic.assignment_policy} policy picks in a transaction")
    _hold_availability(session, clinic.id)  # first: the pool below is read after it
    policy = clinic.assignment_policy
    if policy == rules.ROUND_ROBIN and session.get_bind().dialect.name == "postgresql":
        return _round_robin_in_one_statement(session, clinic.id, exclude, now)
    pool = _available(session, clinic.id, [Role.TREATMENT_COORDINATOR.value], exclude)
    fallback = ""
    if not pool:
        pool = _available(session, clinic.id, [Role.CLINIC_ADMIN.value], exclude)
        fallback = _ADMIN_FALLBACK
    if not pool:
        return Pick(None, _NOBODY)
    pool_ids = [u.id for u in pool]

    if policy == rules.SOURCE:
        source = session.get(LeadSource, source_id)
        mapped = set(source.coordinator_ids or []) if source else set()
        mapped_pool = [
            u.id for u in _available(session, clinic.id, COORDINATOR_ROLES, exclude) if u.id in mapped
        ]
        if mapped_pool:
            chosen = _take_turn(session, clinic.id, f"source:{source.id}", mapped_pool, now, batch)
            return Pick(chosen, f"source policy: coordinator of source {source.name!r}")
        chosen = _take_turn(session, clinic.id, CLINIC_SCOPE, pool_ids, now, batch)
        name = source.name if source else source_id
        return Pick(
            chosen, f"source policy: no available coordinator mapped to {name!r}, round robin{fallback}"
        )

    if policy == rules.CAPACITY:
        # One capacity decision at a time per clinic (the rotation's row, locked until commit):
        # two concurrent new leads must not both read the same open-lead counts.
        last_user_id = _last_turn(session, clinic.id, CLINIC_SCOPE, now)
        counts = leads.open_lead_counts(session=session, clinic_id=clinic.id, user_ids=pool_ids)
        candidates = [
            rules.Candidate(user_id=u.id, open_leads=counts[u.id], max_open_leads=u.max_open_leads)
            for u in pool
        ]
        chosen, all_full = rules.least_loaded(candidates, last_user_id)
        _advance(session, clinic.id, CLINIC_SCOPE, chosen.user_id, now, batch)
        limit = "no limit" if chosen.max_open_leads is None else f"max {chosen.max_open_leads}"
        if all_full:
            return Pick(
                chosen.user_id,
                f"capacity policy: every coordinator is at capacity; least loaded "
                f"({chosen.open_leads} open, {limit}){fallback}",
            )
        return Pick(
            chosen.user_id, f"capacity policy: fewest open leads ({chosen.open_leads}, {limit}){fallback}"
        )

    chosen = _take_turn(session, clinic.id, CLINIC_SCOPE, pool_ids, now, batch)
    return Pick(chosen, f"round robin{fallback}")


def picks_without_transaction(clinic: Clinic) -> bool:
    """Whether `pick_owner` can run in an autocommit session (see Database.statements) for this
    clinic: round robin, whose turn is one statement. Capacity decisions hold the rotation's lock
    until the new lead commits, and the source policy reads the source first: both need one
    transaction."""
    return clinic.assignment_policy == rules.ROUND_ROBIN


# The owner a new lead was given is still available when the lead is written: the guard of its
# RowBatch in an autocommit session, where no availability lock spans the pick and the write. The
# row lock (FOR SHARE) orders the write against a hand-over, which updates the user's row before
# it reads their open leads (auth.update_user flushes first): either the lead commits before the
# update, and the hand-over finds and moves it, or the batch waits for the hand-over, sees the
# user's new row and writes nothing (the caller goes again).
_OWNER_AVAILABLE = (
    sa.select(_USERS.c.id)
    .where(
        _USERS.c.id == sa.bindparam("guard_owner_id"),
        *_IS_AVAILABLE,
    )
    .with_for_update(read=True)
)


def guard_owner(batch: RowBatch, pick: Pick) -> None:
    """Write `batch` (a new lead's rows) only if the picked owner is still available then."""
    if pick.user_id is not None:
        batch.guard(_OWNER_AVAILABLE, {"guard_owner_id": pick.user_id})


def _record_unchanged(
    *, session: Session, lead: Lead, pick: Pick, actor_ref: str, user_id: int | None, now: datetime
) -> None:
    """Nobody could be picked (or the owner stays): the timeline records why."""
    previous = lead.assigned_to_id
    activities.record(
        session=session,
        lead=lead,
        type=ActivityType.ASSIGNMENT_CHANGE,
        at=now,
        actor_ref=actor_ref,
        user_id=user_id,
        notes=f"Owner unchanged: {pick.reason}",
        details={"from_user_id": previous, "to_user_id": previous, "reason": pick.reason},
    )


def _record_change(
    *,
    session: Session,
    lead: Lead,
    previous: int | None,
    pick: Pick,
    actor_ref: str,
    user_id: int | None,
    now: datetime,
) -> None:
    """The trail of a change of owner already made on `lead`: event, ASSIGNMENT_CHANGE activity, audit."""
    events.emit(
        session=session,
        clinic_id=lead.clinic_id,
        type=events.LEAD_ASSIGNED,
        subject_type="lead",
        subject_id=lead.id,
        payload={
            "lead_id": lead.id,
            "from_user_id": previous,
            "to_user_id": pick.user_id,
            "reason": pick.reason,
        },
        now=now,
    )
    activities.record(
        session=session,
        lead=lead,
        type=ActivityType.ASSIGNMENT_CHANGE,
        at=now,
        actor_ref=actor_ref,
        user_id=user_id,
        notes=pick.reason,
        details={"from_user_id": previous, "to_user_id": pick.user_id, "reason": pick.reason},
    )
    audit.record(
        session=session,
        clinic_id=lead.clinic_id,
        actor=actor_ref,
        action="lead.assign",
        subject_type="lead",
        subject_id=lead.id,
        before={"assigned_to_id": previous},
        after={"assigned_to_id": pick.user_id, "reason": pick.reason},
        at=now,
    )


def apply(
    *, session: Session, lead: Lead, pick: Pick, actor_ref: str, user_id: int | None, now: datetime
) -> None:
    """Give `lead` to `pick.user_id`: fields, ASSIGNMENT_CHANGE activity, `lead.assigned` event, audit.

    When nobody could be picked, nothing changes but the timeline records why.
    """
    previous = lead.assigned_to_id
    if pick.user_id is None or pick.user_id == previous:
        _record_unchanged(
            session=session, lead=lead, pick=pick, actor_ref=actor_ref, user_id=user_id, now=now
        )
        return
    lead.assigned_to_id = pick.user_id
    lead.assigned_at = now
    leads.touch(lead=lead, actor_ref=actor_ref, now=now)
    _record_change(
        session=session,
        lead=lead,
        previous=previous,
        pick=pick,
        actor_ref=actor_ref,
        user_id=user_id,
        now=now,
    )


def add_first_owner(
    *,
    batch: RowBatch,
    lead: Lead,
    pick: Pick,
    actor_ref: str,
    user_id: int | None,
    activity_id: int,
    now: datetime,
) -> list[tuple[str, dict]]:
    """The trail of a new lead's owner (stored with the lead from `pick`), for a lead written as a
    `RowBatch`: the ASSIGNMENT_CHANGE activity (its id allocated by the caller) and the audit go
    into the batch; returns the events to emit with them, in order. The activity is not contact,
    so the analytics rollups have nothing to keep."""
    picked = pick.user_id is not None
    details = {"from_user_id": None, "to_user_id": pick.user_id, "reason": pick.reason}
    activity = activities.new_activity(
        lead=lead,
        type=ActivityType.ASSIGNMENT_CHANGE,
        at=now,
        actor_ref=actor_ref,
        user_id=user_id,
        notes=pick.reason if picked else f"Owner unchanged: {pick.reason}",
        details=details,
        activity_id=activity_id,
    )
    batch.add(activity)
    logged = (events.ACTIVITY_LOGGED, activities.logged_payload(activity))
    if not picked:
        return [logged]
    batch.insert(
        AuditEvent,
        **audit.fields(
            clinic_id=lead.clinic_id,
            actor=actor_ref,
            action="lead.assign",
            subject_type="lead",
            subject_id=lead.id,
            before={"assigned_to_id": None},
            after={"assigned_to_id": pick.user_id, "reason": pick.reason},
            at=now,
        ),
    )
    return [(events.LEAD_ASSIGNED, {"lead_id": lead.id, **details}), logged]


def _assignable_user(session: Session, clinic_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.clinic_id != clinic_id:
        raise ValidationFailed("user_id", f"user {user_id} is not a user of this clinic")
    if not user.active:
        raise ValidationFailed("user_id", f"user {user_id} is not active")
    if user.role not in COORDINATOR_ROLES:
        raise ValidationFailed(
            "user_id", f"user {user_id} is a {user.role}; leads go to coordinators or admins"
        )
    if user.out_of_office:
        raise ValidationFailed("user_id", f"user {user_id} is out of office")
    return user


def assign_lead(
    *, session: Session, actor: Actor, lead_id: int, user_id: int, reason: str | None, now: datetime
) -> Lead:
    """Give a lead to a coordinator by hand (assigning it to its current owner changes nothing)."""
    lead = leads.get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    leads.ensure_not_converted(lead)
    user = _assignable_user(session, actor.clinic_id, user_id)
    if lead.assigned_to_id == user.id:
        return lead
    text = f"manual: {reason}" if reason else "manual"
    apply(
        session=session,
        lead=lead,
        pick=Pick(user.id, text),
        actor_ref=actor.ref,
        user_id=actor.user_id,
        now=now,
    )
    return lead


def hand_over_open_leads(*, session: Session, user: User, actor: Actor, now: datetime) -> int:
    """A user went out of office or inactive: their open leads go to others by the clinic's policy.

    The user's row is already updated (auth.update_user flushes before its handlers): see
    _OWNER_AVAILABLE for why a capture in autocommit depends on that order.
    """
    # Waits for the automatic picks under way in the clinic, which may have chosen this user.
    _hold_availability(session, user.clinic_id, shared=False)
    clinic = auth.get_clinic(session=session, clinic_id=user.clinic_id)
    why = "out of office" if user.active else "inactive"
    moved = 0
    for lead in leads.open_leads_of(
        session=session, clinic_id=user.clinic_id, user_id=user.id, for_update=True
    ):
        pick = pick_owner(
            session=session, clinic=clinic, source_id=lead.source_id, now=now, exclude_user_ids=(user.id,)
        )
        reason = f"previous owner {why}; {pick.reason}"
        apply(
            session=session,
            lead=lead,
            pick=Pick(pick.user_id, reason),
            actor_ref=actor.ref,
            user_id=actor.user_id,
            now=now,
        )
        moved += pick.user_id is not None
    return moved


def next_in_turn(*, session: Session, clinic_id: int, scope: str, user_ids: list[int], now: datetime) -> int:
    """The next of `user_ids` in the rotation named `scope` (e.g. automation tasks for a role)."""
    chosen = rules.round_robin(user_ids, _last_turn(session, clinic_id, scope, now))
    _advance(session, clinic_id, scope, chosen, now)
    return chosen
