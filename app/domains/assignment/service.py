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

from app.domains.activities import service as activities
from app.domains.activities.models import ActivityType
from app.domains.assignment import queries, rules, staff
from app.domains.assignment.events import LeadAssigned
from app.domains.auth import service as auth
from app.domains.auth.models import Clinic, User
from app.domains.leads import events as lead_events
from app.domains.leads import lookups, updates
from app.domains.leads import service as leads
from app.domains.leads.models import Lead, LeadSource, kept_spans
from app.domains.leads.rules import COORDINATOR_ROLES
from app.platform.audit import service as audit
from app.platform.db import UnitOfWork
from app.platform.errors import ValidationFailed
from app.platform.events import service as events
from app.platform.roles import Actor, Role
from app.platform.scheduling import service as scheduling

CLINIC_SCOPE = queries.CLINIC_SCOPE


@dataclass(frozen=True)
class Pick:
    """The chosen owner (None: nobody available) and why."""

    user_id: int | None
    reason: str


class _Available(NamedTuple):
    id: int
    max_open_leads: int | None


def _available(session: UnitOfWork, clinic_id: int, roles, exclude: set[int]) -> list[_Available]:
    """(id, max_open_leads) of the clinic's active, in-office users of `roles`, by id."""
    return [_Available(*row) for row in queries.available(session, clinic_id, roles) if row[0] not in exclude]


_NOBODY = "no available treatment coordinator or clinic admin (all inactive or out of office)"
_ADMIN_FALLBACK = "; no available treatment coordinator, so a clinic admin"


def pick_new_owner(
    *, session: UnitOfWork, clinic: Clinic, source_id: int, now: datetime, availability_held: bool = False
) -> Pick:
    """`pick_owner` for a new lead, whose owner is confirmed still available as it is written: one
    found gone meanwhile (their row changed under the pick) is left out and the pick made again.
    `availability_held`: the caller's transaction took the clinic's availability lock already (with
    its first read, queries.availability_lock), so the pick does not take it again."""
    gone: tuple[int, ...] = ()
    while True:
        pick = pick_owner(
            session=session,
            clinic=clinic,
            source_id=source_id,
            now=now,
            exclude_user_ids=gone,
            availability_held=availability_held,
        )
        if pick.user_id is None or queries.still_available(session, pick.user_id):
            return pick
        gone += (pick.user_id,)


def pick_owner(
    *,
    session: UnitOfWork,
    clinic: Clinic,
    source_id: int,
    now: datetime,
    exclude_user_ids: tuple[int, ...] = (),
    availability_held: bool = False,
) -> Pick:
    """Choose who should own a lead of `source_id` under the clinic's policy (records the turn;
    assigns nothing). `availability_held`: as `pick_new_owner`'s."""
    exclude = set(exclude_user_ids)
    if not availability_held:
        queries.hold_availability(session, clinic.id)  # first: the pool below is read after it
    policy = clinic.assignment_policy
    if policy == rules.ROUND_ROBIN and queries.round_robin_in_one_statement(session):
        taken = queries.take_round_robin_turn(session, clinic.id, CLINIC_SCOPE, exclude, now)
        if taken is None:
            return Pick(None, _NOBODY)
        chosen, fallback = taken
        return Pick(chosen, f"round robin{_ADMIN_FALLBACK if fallback else ''}")
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
            chosen = queries.take_turn(session, clinic.id, f"source:{source.id}", mapped_pool, now)
            return Pick(chosen, f"source policy: coordinator of source {source.name!r}")
        chosen = queries.take_turn(session, clinic.id, CLINIC_SCOPE, pool_ids, now)
        name = source.name if source else source_id
        return Pick(
            chosen, f"source policy: no available coordinator mapped to {name!r}, round robin{fallback}"
        )

    if policy == rules.CAPACITY:
        # One capacity decision at a time per clinic (the rotation's row, locked until commit):
        # two concurrent new leads must not both read the same open-lead counts.
        last_user_id = queries.last_turn(session, clinic.id, CLINIC_SCOPE, now)
        counts = lookups.open_lead_counts(session=session, clinic_id=clinic.id, user_ids=pool_ids)
        candidates = [
            rules.Candidate(user_id=u.id, open_leads=counts[u.id], max_open_leads=u.max_open_leads)
            for u in pool
        ]
        chosen, all_full = rules.least_loaded(candidates, last_user_id)
        queries.advance(session, clinic.id, CLINIC_SCOPE, chosen.user_id, now)
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

    chosen = queries.take_turn(session, clinic.id, CLINIC_SCOPE, pool_ids, now)
    return Pick(chosen, f"round robin{fallback}")


@dataclass(frozen=True)
class OwnerDecision:
    """An owner decision to record for a lead: its owner before (`previous`, None for a new lead),
    the pick, and who decided (`actor_ref`, and `user_id` for a person)."""

    previous: int | None
    pick: Pick
    actor_ref: str
    user_id: int | None = None


def record_owner(
    *, session: UnitOfWork, lead: Lead, decision: OwnerDecision, now: datetime, automation: bool = True
) -> None:
    """The trail of an owner decision for `lead` (whose fields already say `decision.pick.user_id`,
    or `decision.previous` if nobody could be picked): a change gets its `lead.assigned` event, its
    ASSIGNMENT_CHANGE activity and its audit; no change (nobody, or the same owner) only an
    activity saying why. The one way an owner decision is recorded: a new lead's (`previous`
    None) as any reassignment's. `automation=False`: its events fire no rule (see events.emit)."""
    previous, pick = decision.previous, decision.pick
    actor_ref, user_id = decision.actor_ref, decision.user_id
    if pick.user_id is None or pick.user_id == previous:
        activities.record(
            session=session,
            lead=lead,
            automation=automation,
            facts=activities.ActivityFacts(
                type=ActivityType.ASSIGNMENT_CHANGE,
                at=now,
                actor_ref=actor_ref,
                user_id=user_id,
                notes=f"Owner unchanged: {pick.reason}",
                details={"from_user_id": previous, "to_user_id": previous, "reason": pick.reason},
            ),
        )
        return
    details = {"from_user_id": previous, "to_user_id": pick.user_id, "reason": pick.reason}
    events.emit(
        session=session,
        event=LeadAssigned(lead_id=lead.id, **details),
        subject=events.Subject.lead(lead),
        now=now,
        automation=automation,
    )
    if automation:  # not a historical import's: that is no news to anyone's screen
        lead_events.tell_new_owner(session=session, lead=lead, details=details, now=now)
    activities.record(
        session=session,
        lead=lead,
        automation=automation,
        facts=activities.ActivityFacts(
            type=ActivityType.ASSIGNMENT_CHANGE,
            at=now,
            actor_ref=actor_ref,
            user_id=user_id,
            notes=pick.reason,
            details=details,
        ),
    )
    audit.record(
        session,
        audit.AuditEntry(
            clinic_id=lead.clinic_id,
            actor=actor_ref,
            action="lead.assign",
            subject_type="lead",
            subject_id=lead.id,
            before={"assigned_to_id": previous},
            after={"assigned_to_id": pick.user_id, "reason": pick.reason},
            at=now,
        ),
    )


def apply(
    *, session: UnitOfWork, lead: Lead, pick: Pick, actor_ref: str, user_id: int | None, now: datetime
) -> None:
    """Give `lead` to `pick.user_id`: fields, ASSIGNMENT_CHANGE activity, `lead.assigned` event, audit.

    When nobody could be picked, nothing changes but the timeline records why.
    """
    previous = lead.assigned_to_id
    if pick.user_id is not None and pick.user_id != previous:
        lead.assigned_to_id = pick.user_id
        lead.assigned_at = now
        for span, value in kept_spans(assigned_at=now).items():  # SQL: written by the flush's UPDATE
            setattr(lead, span, value)
        updates.touch(lead=lead, actor_ref=actor_ref, now=now)
    record_owner(
        session=session,
        lead=lead,
        decision=OwnerDecision(previous=previous, pick=pick, actor_ref=actor_ref, user_id=user_id),
        now=now,
    )


def give_owner(*, session: UnitOfWork, clinic: Clinic, lead: Lead, actor_ref: str, now: datetime) -> bool:
    """Give an unowned lead an owner: by the clinic's policy, else the clinic's fallback owner
    (settings.fallback_owner_id) while they may take work. False: nobody."""
    pick = pick_owner(session=session, clinic=clinic, source_id=lead.source_id, now=now)
    fallback_id = (clinic.settings or {}).get("fallback_owner_id")
    fallback = session.get(User, fallback_id) if pick.user_id is None and fallback_id else None
    if staff.may_take_work(fallback, clinic.id):
        pick = Pick(fallback_id, f"{pick.reason}; the clinic's fallback owner")
    if pick.user_id is None:
        return False  # the lead says why (its next_step_blocked), not a timeline entry each sweep
    apply(session=session, lead=lead, pick=pick, actor_ref=actor_ref, user_id=None, now=now)
    return True


# How many waiting leads one person's arrival hands out in a job; the orphan sweep gives any left
# over an owner on its next run.
WAITING_AT_ONCE = 500
WAITING_LEADS_KIND = "assignment.waiting_leads"


def on_user_available(*, session: UnitOfWork, user: User, actor: Actor, now: datetime) -> None:
    """Someone may take leads again (new, active again, back from out of office): the clinic's leads
    waiting for an owner get one by a ledger job, run once this change is committed (a pick reads
    who is available on a connection of its own: PostgreSQL's round robin)."""
    if user.role not in staff.ASSIGNEE_ROLES:
        return
    session.schedule(
        scheduling.Job(
            kind=WAITING_LEADS_KIND,
            due_at=now,
            dedupe_key=f"waiting-leads:{user.clinic_id}:{user.id}:{now.isoformat()}",
            now=now,
            clinic_id=user.clinic_id,
            subject_type="user",
            subject_id=user.id,
        )
    )


def give_waiting_leads(*, session: UnitOfWork, job, now: datetime) -> None:
    """The ledger handler of `assignment.waiting_leads`: the clinic's open leads captured when nobody
    could own them get an owner now, by the clinic's policy."""
    clinic = auth.get_clinic(session=session, clinic_id=job.clinic_id)
    waiting = lookups.open_leads_of(session=session, clinic_id=clinic.id, user_id=None, for_update=True)
    for lead in waiting[:WAITING_AT_ONCE]:
        give_owner(session=session, clinic=clinic, lead=lead, actor_ref="system", now=now)


def may_take_leads(user: User) -> bool:
    """Whether a lead may be given to `user` now: active, in, and of a role that owns leads."""
    return user.active and not user.out_of_office and user.role in COORDINATOR_ROLES


def assignable_users(*, session: UnitOfWork, clinic_id: int) -> list[User]:
    """The clinic's users a lead may be given to now (an assignment form's choices)."""
    return [u for u in auth.list_users(session=session, clinic_id=clinic_id) if may_take_leads(u)]


def _assignable_user(session: UnitOfWork, clinic_id: int, user_id: int) -> User:
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
    *, session: UnitOfWork, actor: Actor, lead_id: int, user_id: int, reason: str | None, now: datetime
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


def hand_over_open_leads(*, session: UnitOfWork, user: User, actor: Actor, now: datetime) -> int:
    """A user went out of office or inactive: their open leads go to others by the clinic's policy.

    The user's row is already updated (auth.update_user flushes before its handlers).
    """
    # Waits for the automatic picks under way in the clinic, which may have chosen this user.
    queries.hold_availability(session, user.clinic_id, shared=False)
    clinic = auth.get_clinic(session=session, clinic_id=user.clinic_id)
    why = "out of office" if user.active else "inactive"
    moved = 0
    for lead in lookups.open_leads_of(
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


def next_in_turn(
    *, session: UnitOfWork, clinic_id: int, scope: str, user_ids: list[int], now: datetime
) -> int:
    """The next of `user_ids` in the rotation named `scope` (e.g. automation tasks for a role)."""
    chosen = rules.round_robin(user_ids, queries.last_turn(session, clinic_id, scope, now))
    queries.advance(session, clinic_id, scope, chosen, now)
    return chosen


def available_now(*, session: UnitOfWork, clinic_id: int) -> set[int]:
    """The ids of the clinic's users who may be given leads now (active, not out of office, of a role
    that owns leads): the pool the policies pick from, as the Team page shows it."""
    return {row[0] for row in queries.available(session, clinic_id, COORDINATOR_ROLES)}


def reassign_leads(
    *, session: UnitOfWork, actor: Actor, lead_ids: list[int], user_id: int, reason: str | None, now: datetime
) -> list[Lead]:
    """Give several leads to one coordinator (a coordinator out sick): `assign_lead` for each, in one
    transaction, so a refusal (a converted lead, another clinic's) changes none of them."""
    return [
        assign_lead(session=session, actor=actor, lead_id=lead_id, user_id=user_id, reason=reason, now=now)
        for lead_id in dict.fromkeys(lead_ids)
    ]
