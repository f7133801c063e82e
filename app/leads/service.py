"""Use cases of leads and lead sources: read, list, update, delete, duplicates, sources.

Creating a lead needs the pipeline (default stage) and assignment, which sit above this domain,
so the create use case lives in `app/intake`; this module gives it the building blocks
(`new_lead`, `find_duplicates`, `new_lead_source_join`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session, attributes

from app import phi
from app.audit import service as audit
from app.audit.models import AuditEvent
from app.auth import service as auth
from app.auth.models import Clinic, User
from app.auth.roles import Actor
from app.db import Frozen, RowBatch, new_row, page_offset
from app.db.protected import keys_of
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import service as events
from app.leads import rules
from app.leads.models import (
    OPEN_STATUSES,
    Lead,
    LeadSource,
    LeadSourceCategory,
    LeadStatus,
    PatientRelationship,
)

# --- lead sources ----------------------------------------------------------------------------

SOURCE_FIELDS = ("name", "category", "description", "is_active", "monthly_cost", "coordinator_ids")


def seed_default_sources(*, session: Session, clinic: Clinic, now: datetime) -> None:
    """One active source per category for a new clinic."""
    for name, category in rules.DEFAULT_SOURCES:
        session.add(
            LeadSource(
                clinic_id=clinic.id,
                name=name,
                category=category.value,
                is_active=True,
                coordinator_ids=[],
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()


def list_sources(
    *, session: Session, actor: Actor, category: str | None = None, is_active: bool | None = None
) -> list[LeadSource]:
    """The clinic's lead sources by name, optionally of one category or activity state."""
    stmt = sa.select(LeadSource).where(LeadSource.clinic_id == actor.clinic_id)
    if category:
        stmt = stmt.where(LeadSource.category == category)
    if is_active is not None:
        stmt = stmt.where(LeadSource.is_active.is_(is_active))
    return list(session.scalars(stmt.order_by(LeadSource.name, LeadSource.id)))


def get_source(*, session: Session, clinic_id: int, source_id: int, for_update: bool = False) -> LeadSource:
    """One source of the clinic; another clinic's source is not found. `for_update` locks it."""
    source = session.get(
        LeadSource, source_id, with_for_update=for_update or None, populate_existing=for_update
    )
    if source is None or source.clinic_id != clinic_id:
        raise NotFound(f"lead source {source_id} not found")
    return source


def _name_taken(session: Session, clinic_id: int, name: str, except_id: int | None) -> bool:
    stmt = sa.select(LeadSource.id).where(
        LeadSource.clinic_id == clinic_id, sa.func.lower(LeadSource.name) == name.lower()
    )
    if except_id is not None:
        stmt = stmt.where(LeadSource.id != except_id)
    return session.scalar(stmt.limit(1)) is not None


def _name_conflict(name: str) -> Conflict:
    return Conflict(
        f"a lead source named {name!r} already exists", errors={"json": {"name": ["already taken"]}}
    )


def validate_coordinator_ids(*, session: Session, clinic_id: int, user_ids: list[int]) -> list[int]:
    """The ids, each an active coordinator-capable user of the clinic; else 422 naming the field."""
    wanted = list(dict.fromkeys(user_ids))
    if not wanted:
        return []
    found = {
        user.id: user
        for user in session.scalars(sa.select(User).where(User.id.in_(wanted), User.clinic_id == clinic_id))
    }
    problems = []
    for user_id in wanted:
        user = found.get(user_id)
        if user is None:
            problems.append(f"user {user_id} is not a user of this clinic")
        elif not user.active:
            problems.append(f"user {user_id} is not active")
        elif user.role not in rules.COORDINATOR_ROLES:
            problems.append(f"user {user_id} is a {user.role}, not a coordinator")
    if problems:
        raise ValidationFailed("coordinator_ids", "; ".join(problems))
    return wanted


def _source_snapshot(source: LeadSource) -> dict:
    snapshot = {k: getattr(source, k) for k in SOURCE_FIELDS}
    snapshot["monthly_cost"] = None if source.monthly_cost is None else str(source.monthly_cost)
    return snapshot


def _flush_source(session: Session, source: LeadSource) -> None:
    # The pre-check answers the common case; the unique constraint settles a race between two
    # admins creating the same name at once (a 409 instead of a 500).
    try:
        with session.begin_nested():
            session.flush()
    except sa.exc.IntegrityError as exc:
        raise _name_conflict(source.name) from exc


def create_source(*, session: Session, actor: Actor, data: dict, now: datetime) -> LeadSource:
    """A new lead source; names are unique per clinic (case-insensitively)."""
    name = data["name"].strip()
    if not name:
        raise ValidationFailed("name", "must not be blank")
    if _name_taken(session, actor.clinic_id, name, None):
        raise _name_conflict(name)
    source = LeadSource(
        clinic_id=actor.clinic_id,
        name=name,
        category=data["category"],
        description=data.get("description"),
        is_active=data.get("is_active", True),
        monthly_cost=data.get("monthly_cost"),
        coordinator_ids=validate_coordinator_ids(
            session=session, clinic_id=actor.clinic_id, user_ids=data.get("coordinator_ids") or []
        ),
        created_at=now,
        updated_at=now,
    )
    session.add(source)
    _flush_source(session, source)
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead_source.create",
        subject_type="lead_source",
        subject_id=source.id,
        after=_source_snapshot(source),
        at=now,
    )
    return source


def update_source(*, session: Session, actor: Actor, source_id: int, data: dict, now: datetime) -> LeadSource:
    """Change a lead source (name, category, cost, active, coordinators)."""
    source = get_source(session=session, clinic_id=actor.clinic_id, source_id=source_id, for_update=True)
    before = _source_snapshot(source)
    if "name" in data:
        name = data["name"].strip()
        if not name:
            raise ValidationFailed("name", "must not be blank")
        if _name_taken(session, actor.clinic_id, name, source.id):
            raise _name_conflict(name)
        data = {**data, "name": name}
    if "coordinator_ids" in data:
        data = {
            **data,
            "coordinator_ids": validate_coordinator_ids(
                session=session, clinic_id=actor.clinic_id, user_ids=data["coordinator_ids"] or []
            ),
        }
    for key, value in data.items():
        setattr(source, key, value)
    source.updated_at = now
    _flush_source(session, source)
    old, new = audit.changes(before, _source_snapshot(source))
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead_source.update",
        subject_type="lead_source",
        subject_id=source.id,
        before=old,
        after=new,
        at=now,
    )
    return source


def active_source_named(*, session: Session, clinic_id: int, name: str) -> LeadSource | None:
    """The clinic's active source with this name (case-insensitive), if any."""
    return session.scalar(
        sa.select(LeadSource)
        .where(
            LeadSource.clinic_id == clinic_id,
            LeadSource.is_active.is_(True),
            sa.func.lower(LeadSource.name) == name.strip().lower(),
        )
        .limit(1)
    )


def first_active_source_of(*, session: Session, clinic_id: int, category: str) -> LeadSource | None:
    """The clinic's oldest active source of a category, if any."""
    return session.scalar(
        sa.select(LeadSource)
        .where(
            LeadSource.clinic_id == clinic_id,
            LeadSource.is_active.is_(True),
            LeadSource.category == category,
        )
        .order_by(LeadSource.id)
        .limit(1)
    )


def new_lead_source_join(clinic_id: sa.ColumnElement[int]) -> sa.ColumnElement[bool]:
    """SQL: joins the source a new lead of `clinic_id` is attributed to: the `source_id` parameter
    if given (of the clinic), else the clinic's oldest active source of category OTHER. Check what
    was found with `checked_source`."""
    sources, other = LeadSource.__table__, LeadSource.__table__.alias("other_source")
    oldest_other = (
        sa.select(other.c.id)
        .where(
            other.c.clinic_id == clinic_id,
            other.c.is_active.is_(True),
            other.c.category == sa.literal_column(f"'{LeadSourceCategory.OTHER.value}'"),
        )
        .order_by(other.c.id)
        .limit(1)
        .scalar_subquery()
    )
    given = sa.bindparam("source_id", type_=sa.Integer)
    return sa.and_(sources.c.clinic_id == clinic_id, sources.c.id == sa.func.coalesce(given, oldest_other))


def checked_source(*, source_id: int | None, found: LeadSource | None) -> LeadSource:
    """The source a lead is attributed to (`found` for `source_id`, or for None the fallback), else a 422."""
    if source_id is None:
        if found is None:
            raise ValidationFailed("source_id", "required: the clinic has no active source of category OTHER")
        return found
    if found is None:
        raise ValidationFailed("source_id", f"lead source {source_id} does not exist")
    if not found.is_active:
        raise ValidationFailed("source_id", f"lead source {source_id} is inactive")
    return found


# --- leads: reading --------------------------------------------------------------------------


def note_contact(*, session: Session, lead: Lead, at: datetime) -> None:
    """Move the lead's `last_contacted_at` up to `at` (a contact logged late never moves it back).

    One conditional UPDATE: two contacts logged at once both end at the latest. Core, so it does not
    touch `updated_at` (a contact is the lead's history, not an edit of the lead)."""
    session.execute(
        sa.update(Lead)
        .where(Lead.id == lead.id, sa.or_(Lead.last_contacted_at.is_(None), Lead.last_contacted_at < at))
        .values(last_contacted_at=at)
        .execution_options(synchronize_session=False)
    )
    if lead.last_contacted_at is None or lead.last_contacted_at < at:
        attributes.set_committed_value(lead, "last_contacted_at", at)  # as stored, not dirty


def get_lead(*, session: Session, clinic_id: int, lead_id: int, for_update: bool = False) -> Lead:
    """A live lead of the clinic; deleted leads and other clinics' leads are not found.

    `for_update` locks the row (PostgreSQL) so two concurrent changes of one lead run one after
    the other instead of both deciding from the same old state.
    """
    stmt = sa.select(Lead).where(Lead.id == lead_id, Lead.clinic_id == clinic_id, Lead.deleted_at.is_(None))
    if for_update:
        # populate_existing: a row already in the session is re-read once the lock is ours, so
        # the decision is made on the committed state, not on what this session saw before.
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    lead = session.scalar(stmt)
    if lead is None:
        raise NotFound(f"lead {lead_id} not found")
    return lead


def ensure_not_converted(lead: Lead) -> None:
    """Conversion locks a lead: any later change is a conflict."""
    if lead.status == LeadStatus.CONVERTED:
        raise Conflict(f"lead {lead.id} is converted and can no longer be changed")


def read_lead(*, session: Session, actor: Actor, lead_id: int, now: datetime) -> Lead:
    """One lead; every read is audited (leads are treated as PHI)."""
    lead = get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id)
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead.read",
        subject_type="lead",
        subject_id=lead.id,
        at=now,
    )
    return lead


SORT_COLUMNS = {name: getattr(Lead, name) for name in rules.SORT_FIELDS}


def _query_error(field: str, message: str) -> ValidationFailed:
    """A 422 about a query parameter, reported where webargs reports its own: errors.query."""
    error = ValidationFailed(field, message)
    error.errors = {"query": {field: [message]}}
    return error


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def list_leads(
    *,
    session: Session,
    actor: Actor,
    filters: dict,
    sort: str,
    page: int,
    page_size: int,
    now: datetime,
    extra_conditions: tuple = (),
) -> tuple[list[Lead], int]:
    """The clinic's live leads, filtered, sorted and paged; the list call is audited once.

    Filters: see `list_conditions`; `extra_conditions` are ones a higher domain defines (e.g.
    automation's "no next step").
    """
    conditions = [*list_conditions(session=session, actor=actor, filters=filters), *extra_conditions]
    order, tiebreak = list_order(sort)
    total = session.scalar(sa.select(sa.func.count()).select_from(Lead).where(*conditions))
    rows = session.scalars(
        sa.select(Lead)
        .where(*conditions)
        .order_by(order, tiebreak)
        .limit(page_size)
        .offset(page_offset(page, page_size))
    ).all()
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead.list",
        subject_type="lead",
        subject_id=None,
        after={
            "filters": {k: str(v) for k, v in filters.items() if v is not None},
            "lead_ids": [lead.id for lead in rows],
        },
        at=now,
    )
    return list(rows), total


def list_order(sort: str) -> tuple:
    """ORDER BY of the lead list: the sort field (a leading "-" descending), then the id."""
    column = SORT_COLUMNS[sort.lstrip("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    if column is Lead.score:  # unscored (null) leads last in both directions, on every database
        order = order.nulls_last()
    return order, (Lead.id.desc() if sort.startswith("-") else Lead.id.asc())


def list_conditions(*, session: Session, actor: Actor, filters: dict) -> list:
    """WHERE clauses of the lead list's filters: stage (slug), status, assigned_to (user id, "me" or
    "none"), source (id), created_from / created_to (a date is a whole day in the clinic's
    timezone), q (text over contact and patient names, email and phone), stale (flagged stale in
    either sense: over the stage's limit in this stay, or quiet)."""
    conditions = [Lead.clinic_id == actor.clinic_id, Lead.deleted_at.is_(None)]
    if filters.get("stale") is not None:
        flagged = sa.and_(
            Lead.status.in_(OPEN_STATUSES),
            sa.or_(Lead.stage_stale_at.is_not(None), Lead.quiet_flagged_at.is_not(None)),
        )
        conditions.append(flagged if filters["stale"] else ~flagged)
    if filters.get("stage"):
        conditions.append(Lead.pipeline_stage == filters["stage"])
    if filters.get("status"):
        conditions.append(Lead.status == filters["status"])
    assigned_to = filters.get("assigned_to")
    if assigned_to == "none":
        conditions.append(Lead.assigned_to_id.is_(None))
    elif assigned_to == "me":
        if actor.user_id is None:
            raise _query_error("assigned_to", "'me' needs a user; an API key is nobody")
        conditions.append(Lead.assigned_to_id == actor.user_id)
    elif assigned_to is not None:
        conditions.append(Lead.assigned_to_id == int(assigned_to))
    if filters.get("source") is not None:
        conditions.append(Lead.source_id == filters["source"])
    created_from, created_to = filters.get("created_from"), filters.get("created_to")
    if isinstance(created_from, date) or isinstance(created_to, date):
        # Only a date range needs the clinic (a day is a day in its timezone): the board does not.
        tz = ZoneInfo(auth.get_clinic(session=session, clinic_id=actor.clinic_id).timezone)
    if isinstance(created_from, datetime):
        conditions.append(Lead.created_at >= created_from)
    elif isinstance(created_from, date):
        conditions.append(Lead.created_at >= _day_start(created_from, tz))
    if isinstance(created_to, datetime):
        conditions.append(Lead.created_at <= created_to)
    elif isinstance(created_to, date):
        conditions.append(Lead.created_at < _day_start(created_to + timedelta(days=1), tz))
    q = (filters.get("q") or "").strip()
    if q:
        pattern = _like_pattern(q)
        text_columns = (
            Lead.first_name,
            Lead.last_name,
            Lead.patient_first_name,
            Lead.patient_last_name,
            Lead.email,
        )
        matches = [column.ilike(pattern, escape="\\") for column in text_columns]
        words = q.split()
        if len(words) > 1:
            # "Jane Doe" should find first_name=Jane, last_name=Doe.
            full = sa.func.coalesce(Lead.first_name, "") + " " + sa.func.coalesce(Lead.last_name, "")
            patient = (
                sa.func.coalesce(Lead.patient_first_name, "")
                + " "
                + sa.func.coalesce(Lead.patient_last_name, "")
            )
            matches += [full.ilike(pattern, escape="\\"), patient.ilike(pattern, escape="\\")]
        digits = "".join(ch for ch in q if ch.isdigit())
        if len(digits) >= 3:
            matches += [Lead.phone.like(f"%{digits}%"), Lead.phone_alt.like(f"%{digits}%")]
        conditions.append(sa.or_(*matches))
    return conditions


# --- leads: writing --------------------------------------------------------------------------

PROTECTED_FIELDS = ("patient_dob", "insurance_member_id", "notes")
NAME_FIELDS = ("first_name", "last_name")
PLAIN_FIELDS = (
    "preferred_contact",
    "preferred_time",
    "patient_first_name",
    "patient_last_name",
    "patient_relationship",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "source_campaign",
    "source_detail",
    "referring_provider_id",
    "referring_patient_id",
    "insurance_carrier",
    "insurance_member_id",
    "notes",
    # The contact policy (app/automation/policy.py); audited, and their change is in lead.updated.
    "do_not_contact",
    "email_opt_out",
    "sms_opt_out",
    "timezone",
)
AUDITED_FIELDS = (
    *NAME_FIELDS,
    "email",
    "phone",
    "phone_alt",
    *PLAIN_FIELDS,
    "patient_dob",
    "source_id",
    "treatment_interest",
)


def _snapshot(lead: Lead) -> dict:
    return {k: getattr(lead, k) for k in AUDITED_FIELDS}


def _redacted(values: dict) -> dict:
    """Audit rows are plain JSON: protected values are never written there, only that they changed."""
    out = {}
    for key, value in values.items():
        if key in PROTECTED_FIELDS:
            out[key] = None if value is None else "[protected]"
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


def dob_index(*, phi_keys: str, clinic_id: int, dob: date | None) -> str | None:
    """The keyed digest of a date of birth within a clinic (for same-DOB lookups)."""
    if dob is None:
        return None
    return phi.blind_index(keys=phi_keys, purpose="patient_dob", scope=str(clinic_id), value=dob.isoformat())


def _clean_text(value):
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _normalised_changes(
    *, session: Session, clinic: Clinic, data: dict, now: datetime, captured_at: datetime | None = None
) -> dict:
    """Input fields in stored form: names trimmed, phones E.164, email lower-case, DOB checked
    (with its blind index and the age group at `captured_at`, the lead's capture: now if new)."""
    out: dict = {}
    for key in NAME_FIELDS:
        if key in data:
            value = (data[key] or "").strip()
            if not value and key == "first_name":
                raise ValidationFailed(key, "must not be blank")
            out[key] = value
    for key in PLAIN_FIELDS:
        if key in data:
            out[key] = _clean_text(data[key])
    for key in ("phone", "phone_alt"):
        if key in data:
            raw = _clean_text(data[key])
            try:
                out[key] = None if raw is None else rules.normalize_phone(raw, clinic.default_phone_region)
            except rules.InvalidPhone as exc:
                raise ValidationFailed(key, str(exc)) from exc
    if "email" in data:
        raw = _clean_text(data["email"])
        out["email"] = None if raw is None else rules.normalize_email(raw)
    if "patient_dob" in data:
        dob = data["patient_dob"]
        today = now.astimezone(ZoneInfo(clinic.timezone)).date()
        if dob is not None and dob > today:
            raise ValidationFailed("patient_dob", "a date of birth cannot be in the future")
        if dob is not None and dob.year < 1900:
            raise ValidationFailed("patient_dob", "a date of birth before 1900 is not plausible")
        out["patient_dob"] = dob
        out["patient_dob_index"] = dob_index(phi_keys=keys_of(session), clinic_id=clinic.id, dob=dob)
        out["patient_age_group"] = rules.age_group(dob, captured_at or now)
    if "treatment_interest" in data:
        out["treatment_interest"] = list(dict.fromkeys(data["treatment_interest"] or []))
    for key in ("preferred_contact", "patient_relationship"):
        if key in out and out[key] is None:
            raise ValidationFailed(key, "must not be null")
    return out


def _probe(fields: dict) -> rules.DuplicateProbe:
    return rules.DuplicateProbe(
        phones={p for p in (fields.get("phone"), fields.get("phone_alt")) if p},
        email=fields.get("email"),
        dob_index=fields.get("patient_dob_index"),
        names={
            n
            for n in (
                rules.normalize_name(fields.get("first_name"), fields.get("last_name")),
                rules.normalize_name(fields.get("patient_first_name"), fields.get("patient_last_name")),
            )
            if n
        },
    )


def _duplicate_candidates() -> sa.CompoundSelect:
    # Built once, with a fixed set of parameters (a probe has at most two phones), so it is compiled
    # once and prepared by the driver: it runs for every new lead.
    #
    # One equality per arm, each on its own partial index, joined by UNION (which also drops a lead
    # matched twice). A single WHERE with OR reads the same but leaves the plan to table statistics:
    # before the table's first ANALYZE (a new database's first minute, a bench) PostgreSQL read every
    # lead of the clinic through (clinic_id, created_at) and filtered: a capture cost that grew with
    # each lead captured (measured: 2.5 ms at 3,000 leads against 0.05 ms for this form).
    leads = Lead.__table__
    phones = [sa.bindparam("phone_1", type_=sa.String), sa.bindparam("phone_2", type_=sa.String)]
    columns = (
        leads.c.id,
        leads.c.phone,
        leads.c.phone_alt,
        leads.c.email,
        leads.c.patient_dob_index,
        leads.c.first_name,
        leads.c.last_name,
        leads.c.patient_first_name,
        leads.c.patient_last_name,
    )

    def open_leads_where(matched) -> sa.Select:
        return sa.select(*columns).where(
            leads.c.clinic_id == sa.bindparam("clinic_id"),
            matched,
            leads.c.deleted_at.is_(None),
            leads.c.status.in_([sa.literal_column(f"'{s.value}'") for s in OPEN_STATUSES]),
            leads.c.id != sa.bindparam("exclude_id"),
        )

    return (
        sa.union(
            *(
                open_leads_where(column == phone)
                for column in (leads.c.phone, leads.c.phone_alt)
                for phone in phones
            ),
            open_leads_where(leads.c.email == sa.bindparam("email", type_=sa.String)),
            open_leads_where(leads.c.patient_dob_index == sa.bindparam("dob_index", type_=sa.String)),
        )
        .order_by(sa.literal_column("id"))
        .limit(200)
    )


_DUPLICATE_CANDIDATES = Frozen(_duplicate_candidates())


def find_duplicates(
    *, session: Session, clinic_id: int, fields: dict, exclude_lead_id: int | None = None
) -> list[dict]:
    """Open leads of the clinic that may be the same family: [{"lead_id", "matched": [...]}].

    `fields` are normalised lead fields (as `prepare_new_lead` returns them).
    """
    probe = _probe(fields)
    if not (probe.phones or probe.email or probe.dob_index):
        return []
    phones = sorted(probe.phones)
    params = {
        "clinic_id": clinic_id,
        "phone_1": phones[0] if phones else None,
        "phone_2": phones[1] if len(phones) > 1 else None,  # a NULL matches nothing: no second probe
        "email": probe.email,
        "dob_index": probe.dob_index,
        "exclude_id": exclude_lead_id or 0,
    }
    found = []
    for row in _DUPLICATE_CANDIDATES.execute(session.connection(), params):
        lead_id, phone, phone_alt, email, dob_index, first, last, patient_first, patient_last = row
        candidate = rules.Candidate(
            lead_id=lead_id,
            phones={p for p in (phone, phone_alt) if p},
            email=email,
            dob_index=dob_index,
            names={
                n
                for n in (
                    rules.normalize_name(first, last),
                    rules.normalize_name(patient_first, patient_last),
                )
                if n
            },
        )
        reasons = rules.match_reasons(probe, candidate)
        if reasons:
            found.append({"lead_id": lead_id, "matched": reasons})
    return found


def prepare_new_lead(*, session: Session, clinic: Clinic, data: dict, now: datetime) -> dict:
    """Validated, normalised fields of a lead about to be created (nothing is stored)."""
    fields = _normalised_changes(session=session, clinic=clinic, data=data, now=now)
    fields.setdefault("last_name", "")
    fields.setdefault("preferred_contact", "PHONE")
    fields.setdefault("patient_relationship", PatientRelationship.SELF.value)
    fields.setdefault("treatment_interest", [])
    unnamed_patient = not fields.get("patient_first_name") and not fields.get("patient_last_name")
    if fields["patient_relationship"] == PatientRelationship.SELF.value and unnamed_patient:
        # The patient is the contact: carry the name over so every lead names its patient.
        fields["patient_first_name"] = fields.get("first_name")
        fields["patient_last_name"] = fields.get("last_name")
    return fields


def new_lead(
    *,
    batch: RowBatch,
    lead_id: int,
    clinic: Clinic,
    fields: dict,
    source: LeadSource,
    stage: str,
    actor_ref: str,
    now: datetime,
    assigned_to_id: int | None = None,
    submission_id: str | None = None,
    external_id: str | None = None,
) -> Lead:
    """A lead from prepared fields (its id allocated by the caller), in `stage`, owned by
    `assigned_to_id` if given, added to `batch` with its audit event.

    Choosing the owner, and the assignment's trail and events, are the caller's.
    """
    lead = new_row(
        Lead,
        id=lead_id,
        clinic_id=clinic.id,
        status=LeadStatus.NEW.value,
        pipeline_stage=stage,
        stage_entered_at=now,
        last_activity_at=now,  # its quiet spell starts at capture
        source_id=source.id,
        assigned_to_id=assigned_to_id,
        assigned_at=None if assigned_to_id is None else now,
        submission_id=submission_id,
        external_id=external_id,
        created_at=now,
        updated_at=now,
        created_by=actor_ref,
        updated_by=actor_ref,
        **fields,
    )
    batch.add(lead)
    batch.insert(
        AuditEvent,
        **audit.fields(
            clinic_id=clinic.id,
            actor=actor_ref,
            action="lead.create",
            subject_type="lead",
            subject_id=lead.id,
            after=_redacted({k: v for k, v in _snapshot(lead).items() if v not in (None, [], "")}),
            at=now,
        ),
    )
    return lead


def find_by_submission(*, session: Session, clinic_id: int, submission_id: str) -> Lead | None:
    """The lead a web-form submission already created, if any (deleted or not)."""
    return session.scalar(
        sa.select(Lead).where(Lead.clinic_id == clinic_id, Lead.submission_id == submission_id).limit(1)
    )


def find_by_external_ids(*, session: Session, clinic_id: int, external_ids: list[str]) -> dict[str, int]:
    """{external id: lead id} of the clinic's leads an import already created (deleted or not)."""
    if not external_ids:
        return {}
    rows = session.execute(
        sa.select(Lead.external_id, Lead.id).where(
            Lead.clinic_id == clinic_id, Lead.external_id.in_(sorted(set(external_ids)))
        )
    )
    return dict(rows.all())


def update_lead(*, session: Session, actor: Actor, lead_id: int, changes: dict, now: datetime) -> Lead:
    """Change a lead's details (not its stage, status or owner: those have their own use cases)."""
    lead = get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    ensure_not_converted(lead)
    clinic = auth.get_clinic(session=session, clinic_id=actor.clinic_id)
    fields = _normalised_changes(
        session=session, clinic=clinic, data=changes, now=now, captured_at=lead.created_at
    )
    if "source_id" in changes and changes["source_id"] != lead.source_id:
        if changes["source_id"] is None:
            raise ValidationFailed("source_id", "a lead always has a source")
        found = session.get(LeadSource, changes["source_id"])
        if found is not None and found.clinic_id != clinic.id:
            found = None  # another clinic's source does not exist here
        fields["source_id"] = checked_source(source_id=changes["source_id"], found=found).id
    before = _snapshot(lead)
    for key, value in fields.items():
        setattr(lead, key, value)
    old, new = audit.changes(before, _snapshot(lead))
    if not new:
        return lead  # nothing changed: no new version, no event
    record_update(session=session, lead=lead, old=old, new=new, actor_ref=actor.ref, now=now)
    return lead


def delete_lead(*, session: Session, actor: Actor, lead_id: int, now: datetime) -> None:
    """Soft-delete a lead: it is kept for the audit trail but answers 404 from then on."""
    lead = get_lead(session=session, clinic_id=actor.clinic_id, lead_id=lead_id, for_update=True)
    lead.deleted_at = now
    lead.updated_at = now
    lead.updated_by = actor.ref
    audit.record(
        session=session,
        clinic_id=actor.clinic_id,
        actor=actor.ref,
        action="lead.delete",
        subject_type="lead",
        subject_id=lead.id,
        at=now,
    )
    events.emit(
        session=session,
        clinic_id=lead.clinic_id,
        type=events.LEAD_DELETED,
        subject_type="lead",
        subject_id=lead.id,
        payload={"lead_id": lead.id},
        now=now,
    )


def record_update(
    *, session: Session, lead: Lead, old: dict, new: dict, actor_ref: str, now: datetime
) -> None:
    """A lead's fields changed (`old` → `new`, changed keys only): a new version, the audit row and
    the `lead.updated` event that rules and sequence stops read."""
    touch(lead=lead, actor_ref=actor_ref, now=now)
    session.flush()
    audit.record(
        session=session,
        clinic_id=lead.clinic_id,
        actor=actor_ref,
        action="lead.update",
        subject_type="lead",
        subject_id=lead.id,
        before=_redacted(old),
        after=_redacted(new),
        at=now,
    )
    events.emit(
        session=session,
        clinic_id=lead.clinic_id,
        type=events.LEAD_UPDATED,
        subject_type="lead",
        subject_id=lead.id,
        payload={"lead_id": lead.id, "changed": sorted(new)},
        now=now,
    )


def touch(*, lead: Lead, actor_ref: str, now: datetime) -> None:
    """Mark a lead changed by another domain's use case (stage, owner): a new version and ETag."""
    lead.updated_at = now
    lead.updated_by = actor_ref


def open_leads_of(*, session: Session, clinic_id: int, user_id: int, for_update: bool = False) -> list[Lead]:
    """A user's open (new or active), live leads, oldest first."""
    stmt = (
        sa.select(Lead)
        .where(
            Lead.clinic_id == clinic_id,
            Lead.assigned_to_id == user_id,
            Lead.deleted_at.is_(None),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(Lead.id)
    )
    if for_update:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt))


def open_lead_counts(*, session: Session, clinic_id: int, user_ids: list[int]) -> dict[int, int]:
    """How many open, live leads each user owns (users with none are 0)."""
    counts = dict.fromkeys(user_ids, 0)
    if not user_ids:
        return counts
    stmt = (
        sa.select(Lead.assigned_to_id, sa.func.count())
        .where(
            Lead.clinic_id == clinic_id,
            Lead.assigned_to_id.in_(user_ids),
            Lead.deleted_at.is_(None),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
        )
        .group_by(Lead.assigned_to_id)
    )
    for user_id, count in session.execute(stmt):
        counts[user_id] = count
    return counts


def note_activity(*, session: Session, lead: Lead, at: datetime) -> None:
    """An activity by a person or the lead at `at`: the lead's quiet spell ends (a new one starts).

    One conditional UPDATE, so two activities logged at once both leave the later time.
    """
    session.execute(
        sa.update(Lead)
        .where(Lead.id == lead.id, sa.or_(Lead.last_activity_at.is_(None), Lead.last_activity_at < at))
        .values(last_activity_at=at, quiet_flagged_at=None)
        .execution_options(synchronize_session=False)
    )
    if lead.last_activity_at is None or lead.last_activity_at < at:
        attributes.set_committed_value(lead, "last_activity_at", at)  # as stored, not dirty
        attributes.set_committed_value(lead, "quiet_flagged_at", None)
