"""Leads and lead sources, with the spec's enums."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime, spans
from app.platform.db.protected import EncryptedDate, EncryptedString
from app.platform.db.search import search_index


class LeadStatus(StrEnum):
    NEW = "NEW"
    ACTIVE = "ACTIVE"
    CONVERTED = "CONVERTED"
    LOST = "LOST"
    ARCHIVED = "ARCHIVED"


# A lead is open (worked, deduplicated against, owned by a coordinator) until it is closed.
OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.ACTIVE)


class PatientRelationship(StrEnum):
    SELF = "SELF"
    CHILD = "CHILD"
    SPOUSE = "SPOUSE"
    OTHER = "OTHER"


class PreferredContact(StrEnum):
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    TEXT = "TEXT"
    ANY = "ANY"


class TreatmentInterest(StrEnum):
    BRACES_METAL = "BRACES_METAL"
    BRACES_CLEAR = "BRACES_CLEAR"
    INVISALIGN = "INVISALIGN"
    RETAINER = "RETAINER"
    SECOND_OPINION = "SECOND_OPINION"
    GENERAL_INQUIRY = "GENERAL_INQUIRY"


class LostReason(StrEnum):
    CHOSE_COMPETITOR = "CHOSE_COMPETITOR"
    COST_FINANCIAL = "COST_FINANCIAL"
    TIMING_NOT_RIGHT = "TIMING_NOT_RIGHT"
    NOT_READY = "NOT_READY"  # seed 002's "not ready": a re-engagement call in 30 days
    NOT_A_CANDIDATE = "NOT_A_CANDIDATE"
    NO_RESPONSE = "NO_RESPONSE"
    INSURANCE_ISSUES = "INSURANCE_ISSUES"
    RELOCATED = "RELOCATED"
    NOT_INTERESTED = "NOT_INTERESTED"  # said so on a call (the call outcome `not_interested`)
    OTHER = "OTHER"


class HesitationReason(StrEnum):
    """Why a lead pending a decision has not decided (asked when the lead enters pending_decision)."""

    COST = "cost"
    TIMING = "timing"
    SECOND_OPINION = "second_opinion"
    APPROVAL = "approval"  # a parent's or spouse's
    FINANCING = "financing"
    OTHER = "other"


class LeadPriority(StrEnum):
    """How soon a lead wants a person: set by staff, a rule (set_priority) or a capture field. The
    tasks automation makes for a high or urgent lead carry that priority (app/domains/automation)."""

    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class LeadSourceCategory(StrEnum):
    DOCTOR_REFERRAL = "DOCTOR_REFERRAL"
    PATIENT_REFERRAL = "PATIENT_REFERRAL"
    WEB_ORGANIC = "WEB_ORGANIC"
    WEB_PAID = "WEB_PAID"
    WEB_SOCIAL = "WEB_SOCIAL"
    PRINT_AD = "PRINT_AD"
    COMMUNITY_EVENT = "COMMUNITY_EVENT"
    SCHOOL_SCREENING = "SCHOOL_SCREENING"
    WALK_IN = "WALK_IN"
    OTHER = "OTHER"


class LeadSource(Base):
    __tablename__ = "lead_sources"
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "name"),
        sa.Index("ix_lead_sources_clinic_category", "clinic_id", "category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    name: Mapped[str] = mapped_column(sa.String(100))
    category: Mapped[str] = mapped_column(sa.String(32))
    description: Mapped[str | None] = mapped_column(sa.Text)
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    monthly_cost: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    # Source-based assignment: the coordinators (user ids) who take this source's leads.
    coordinator_ids: Mapped[list] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


# An open lead, as a partial index's predicate and as the sweeps that read those indexes spell it
# (literal values, so PostgreSQL matches a prepared statement's predicate to the index's).
OPEN_LEAD_SQL = "status IN ('NEW', 'ACTIVE') AND deleted_at IS NULL"
VALUED_LEAD_SQL = "converted_at IS NOT NULL AND treatment_value IS NOT NULL AND deleted_at IS NULL"


def _open_where(column: str) -> sa.TextClause:
    return sa.text(f"{column} IS NULL AND {OPEN_LEAD_SQL}")


def _where_set(name: str, column: str, where: str | None = None) -> sa.Index:
    """An index of (clinic_id, column) over the leads where the column is set (or `where` holds)."""
    where = sa.text(where or f"{column} IS NOT NULL")
    return sa.Index(name, "clinic_id", column, postgresql_where=where, sqlite_where=where)


# Search as you type (GET /api/leads?q=): the columns a search reads, one set per audience (contact
# details for everyone; the patient's name only for a reader with `lead:phi`), each indexed
# (app/platform/db/search.py; migration 0053 made the same indexes).
CONTACT_SEARCH = ("first_name", "last_name", "email", "phone", "phone_alt")
PATIENT_SEARCH = ("patient_first_name", "patient_last_name")
# A family's further patients (LeadPatient): the same names, searched alike for a reader with `lead:phi`.
FURTHER_PATIENT_SEARCH = ("first_name", "last_name")
# Speed to lead's split reads each group's leads in order from an index including its spans, kept on
# the lead (migrations 0066, 0068; `kept_spans` below).
SPLIT_SPANS = ["deleted_at", "routing_seconds", "human_attempt_seconds", "human_contact_seconds"]
_SPLIT = {"postgresql_include": SPLIT_SPANS}


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        # The coordinator's board: GET /api/leads?assigned_to=..&stage=.. newest first.
        sa.Index(
            "ix_leads_clinic_assignee_stage_created",
            "clinic_id",
            "assigned_to_id",
            "pipeline_stage",
            "created_at",
        ),
        sa.Index("ix_leads_clinic_stage_created", "clinic_id", "pipeline_stage", "created_at"),
        # The pipeline board (app/domains/pipeline/board.py): its counts, and a closed column's last 30
        # days by stage entry (migration 0062; docs/performance-history.md "Staff workspace").
        sa.Index("ix_leads_clinic_stage_entered", "clinic_id", "pipeline_stage", "stage_entered_at"),
        sa.Index("ix_leads_clinic_status_created", "clinic_id", "status", "created_at"),
        # (clinic_id, created_at) alone: ix_leads_analytics_cohort below leads with those columns.
        sa.Index("ix_leads_clinic_source_created", "clinic_id", "source_id", "created_at", **_SPLIT),
        sa.Index("ix_leads_analytics_owner_created", "clinic_id", "assigned_to_id", "created_at", **_SPLIT),
        # Duplicate detection looks leads up by normalised phone, email and DOB digest, each indexed
        # where set: a lead without one costs no index entry to write, and before a table's first
        # ANALYZE the planner prefers a partial index to (clinic_id, created_at) (migration 0014).
        _where_set("ix_leads_clinic_phone", "phone"),
        _where_set("ix_leads_clinic_phone_alt", "phone_alt"),
        _where_set("ix_leads_clinic_email", "email"),
        _where_set("ix_leads_clinic_dob_index", "patient_dob_index"),
        # GET /api/leads?priority=urgent: the few leads above normal, indexed alone.
        sa.Index(
            "ix_leads_clinic_priority",
            "clinic_id",
            "priority",
            "created_at",
            postgresql_where=sa.text("priority <> 'normal'"),
            sqlite_where=sa.text("priority <> 'normal'"),
        ),
        # Web-form idempotency: one lead per submission id and clinic.
        sa.UniqueConstraint("clinic_id", "submission_id"),
        # Bulk import idempotency: one lead per integrator's external id and clinic.
        sa.UniqueConstraint("clinic_id", "external_id"),
        # Search as you type (app/platform/db/search.py): the contact details, and the patient's name.
        search_index("ix_leads_contact_search", CONTACT_SEARCH),
        search_index("ix_leads_patient_search", PATIENT_SEARCH),
        # Analytics: the few deleted leads, left out of reports that select stays without a join.
        sa.Index(
            "ix_leads_clinic_deleted",
            "clinic_id",
            postgresql_where=sa.text("deleted_at IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NOT NULL"),
        ),
        # Analytics: conversions in a range (time to convert, revenue per source) read only converted leads.
        sa.Index(
            "ix_leads_clinic_converted",
            "clinic_id",
            "converted_at",
            postgresql_where=sa.text("converted_at IS NOT NULL"),
            sqlite_where=sa.text("converted_at IS NOT NULL"),
        ),
        # The board's values: the average recorded treatment value, from this index alone (migration 0063).
        _where_set("ix_leads_clinic_treatment_value", "treatment_value", VALUED_LEAD_SQL),
        # The staleness sweeps (app/domains/pipeline/staleness.py) read only open leads not yet flagged:
        # a flagged lead leaves the index, so a sweep's cost follows the new finds, not the table.
        sa.Index(
            "ix_leads_stage_stale_due",
            "clinic_id",
            "pipeline_stage",
            "stage_entered_at",
            postgresql_where=_open_where("stage_stale_at"),
            sqlite_where=_open_where("stage_stale_at"),
        ),
        sa.Index(
            "ix_leads_quiet_due",
            "clinic_id",
            "last_activity_at",
            postgresql_where=_open_where("quiet_flagged_at"),
            sqlite_where=_open_where("quiet_flagged_at"),
        ),
        # Analytics: a report's cohort (a clinic's leads created in a range) read from the index alone.
        sa.Index(
            "ix_leads_analytics_cohort",
            "clinic_id",
            "created_at",
            postgresql_include=[
                "deleted_at",
                "status",
                "assigned_to_id",
                "source_id",
                "lost_reason",
                "pipeline_stage",
                "furthest_stage",
                "speed_to_lead_seconds",
                *SPLIT_SPANS[1:],
            ],
        ),
        # Speed to lead's median and p90 over a long range: the contacted leads already in order of
        # their speed, so the percentiles' sort finds its input sorted (migration 0068). Partial: a
        # new lead (not yet contacted) costs it no entry.
        sa.Index(
            "ix_leads_speed_to_lead",
            "clinic_id",
            "speed_to_lead_seconds",
            postgresql_include=["created_at", "deleted_at", "assigned_to_id", "source_id"],
            postgresql_where=sa.text("speed_to_lead_seconds IS NOT NULL"),
            sqlite_where=sa.text("speed_to_lead_seconds IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))

    status: Mapped[str] = mapped_column(sa.String(16), default=LeadStatus.NEW)
    pipeline_stage: Mapped[str] = mapped_column(sa.String(64))
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Contact (the responsible party).
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(254))  # stored lower-cased
    phone: Mapped[str | None] = mapped_column(sa.String(20))  # E.164
    phone_alt: Mapped[str | None] = mapped_column(sa.String(20))  # E.164
    preferred_contact: Mapped[str] = mapped_column(sa.String(16), default=PreferredContact.PHONE)
    preferred_time: Mapped[str | None] = mapped_column(sa.String(100))

    # Patient (who seeks treatment; often the contact's child).
    patient_first_name: Mapped[str | None] = mapped_column(sa.String(100))
    patient_last_name: Mapped[str | None] = mapped_column(sa.String(100))
    patient_dob: Mapped[date | None] = mapped_column("patient_dob_encrypted", EncryptedDate)
    # Keyed HMAC of the DOB: finds same-DOB leads without decrypting every row.
    patient_dob_index: Mapped[str | None] = mapped_column(sa.String(64))
    # The age group at capture (leads.rules.age_group: child, teen, adult; null: unknown), written
    # with the DOB: the lead score reads it without decrypting a DOB per lead. Not PHI.
    patient_age_group: Mapped[str | None] = mapped_column(sa.String(8))
    patient_relationship: Mapped[str] = mapped_column(sa.String(16), default=PatientRelationship.SELF)
    # The year of birth when only it (or an age) is known, as a phone call often gives: "Diego, 12".
    patient_birth_year: Mapped[int | None] = mapped_column(sa.SmallInteger)

    # The street address is encrypted; city, state and postal code stay clear (coarse, and automation
    # rules' conditions name them).
    address_line1: Mapped[str | None] = mapped_column(
        "address_line1_encrypted", EncryptedString, key="address_line1"
    )
    address_line2: Mapped[str | None] = mapped_column(
        "address_line2_encrypted", EncryptedString, key="address_line2"
    )
    city: Mapped[str | None] = mapped_column(sa.String(100))
    state: Mapped[str | None] = mapped_column(sa.String(100))
    postal_code: Mapped[str | None] = mapped_column(sa.String(20))

    source_id: Mapped[int] = mapped_column(sa.ForeignKey("lead_sources.id"))
    source_campaign: Mapped[str | None] = mapped_column(sa.String(200))
    # Free text a form or an integrator sent with the lead: may say why they came, so encrypted.
    source_detail: Mapped[str | None] = mapped_column(
        "source_detail_encrypted", EncryptedString, key="source_detail"
    )
    # Referring providers and patients have no tables yet: plain ids, no foreign keys.
    referring_provider_id: Mapped[int | None] = mapped_column(sa.Integer)
    referring_patient_id: Mapped[int | None] = mapped_column(sa.Integer)

    treatment_interest: Mapped[list] = mapped_column(JSONType, default=list)
    insurance_carrier: Mapped[str | None] = mapped_column(sa.String(200))
    insurance_member_id: Mapped[str | None] = mapped_column("insurance_member_id_encrypted", EncryptedString)

    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the conversion recorded as the treatment's value: a plain amount in the clinic's currency.
    treatment_value: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    lost_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_reason: Mapped[str | None] = mapped_column(sa.String(32))
    # Why a family hesitates, asked on entering pending_decision (HesitationReason): a category, no text.
    hesitation_reason: Mapped[str | None] = mapped_column(sa.String(32))
    lost_notes: Mapped[str | None] = mapped_column(EncryptedString)

    # The initial notes/concerns: health concerns, so PHI, encrypted at rest like the DOB.
    notes: Mapped[str | None] = mapped_column("notes_encrypted", EncryptedString)
    suggested_action: Mapped[str | None] = mapped_column(sa.String(64))  # set by automation
    # Why the orphan sweep could not give it a next step (automation/orphans.py: "no_owner",
    # "unreachable"); None once it could. Read with the live orphan condition, never alone.
    next_step_blocked: Mapped[str | None] = mapped_column(sa.String(32))
    priority: Mapped[str] = mapped_column(
        sa.String(8), default=LeadPriority.NORMAL.value, server_default=LeadPriority.NORMAL.value
    )

    # The contact policy: automated messages honour these (a STOP by SMS sets sms_opt_out).
    do_not_contact: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    email_opt_out: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    sms_opt_out: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # A STOP sent on WhatsApp: no WhatsApp message (texts are sms_opt_out's).
    whatsapp_opt_out: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Who asked for each channel's opt-out (app/domains/leads/consent.py): the person's own (a texted
    # STOP, an unsubscribe, a complaint) is undone only by the person. None while opted in.
    sms_opt_out_source: Mapped[str | None] = mapped_column(sa.String(32))
    email_opt_out_source: Mapped[str | None] = mapped_column(sa.String(32))
    whatsapp_opt_out_source: Mapped[str | None] = mapped_column(sa.String(32))
    timezone: Mapped[str | None] = mapped_column(sa.String(64))  # quiet hours are the lead's; null: clinic's

    submission_id: Mapped[str | None] = mapped_column(sa.String(128))  # web-form idempotency key
    external_id: Mapped[str | None] = mapped_column(
        sa.String(200)
    )  # the importer's id (POST /api/leads/import)

    # The last contact (app/domains/activities/rules.py), kept by activities.record; null: never contacted.
    last_contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Escalated to the clinic admins for no contact within hours of capture (app/domains/tasks), once.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # Analytics summaries, kept by app/domains/analytics/rollups.py: see there.
    first_outbound_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_task_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    furthest_stage: Mapped[str | None] = mapped_column(sa.String(64))
    # The spans the speed to lead report takes percentiles of, in seconds, kept with the firsts they
    # come from by whatever writes those (`kept_spans`): null where the report has no span.
    speed_to_lead_seconds: Mapped[float | None] = mapped_column(sa.Float)
    routing_seconds: Mapped[float | None] = mapped_column(sa.Float)
    human_attempt_seconds: Mapped[float | None] = mapped_column(sa.Float)
    human_contact_seconds: Mapped[float | None] = mapped_column(sa.Float)

    # Follow-up intelligence, kept by app/domains/intelligence (its event consumer and the nightly scoring):
    # P(conversion within 90 days), its top factors and model version; the next best action.
    score: Mapped[float | None] = mapped_column(sa.Float)
    score_factors: Mapped[list | None] = mapped_column(JSONType)
    score_model_version: Mapped[str | None] = mapped_column(sa.String(64))
    next_action: Mapped[dict | None] = mapped_column(JSONType)

    # Staleness, kept on the lead so "once per stay" and "once per quiet spell" outlive the ledger's
    # purged rows: when the current stay was flagged over its stage's limit (cleared on entering a
    # stage); the last activity by a person or the lead (the capture, before any); when the current
    # quiet spell was flagged (cleared by the next activity).
    stage_stale_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    quiet_flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(sa.String(64))  # actor ref: "user:3", "web_form", ...
    updated_by: Mapped[str] = mapped_column(sa.String(64))
    # Set when the person's data was erased (app/domains/privacy): the row stays as an anonymised tombstone.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Merged into another lead of the clinic (app/domains/merging): closed, its rows moved to that lead.
    merged_into_id: Mapped[int | None] = mapped_column(sa.ForeignKey("leads.id"))

    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES and self.deleted_at is None


class LeadPatient(Base):
    """A further patient of a lead: a family enquiring for two children. The lead's own patient
    columns hold its first patient (what duplicates, scoring, rules and the export read); these rows
    the others, in the order given (`position`, from 1)."""

    __tablename__ = "lead_patients"
    __table_args__ = (
        sa.UniqueConstraint("lead_id", "position"),
        search_index("ix_lead_patients_search", FURTHER_PATIENT_SEARCH),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), index=True)
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    position: Mapped[int] = mapped_column(sa.SmallInteger)
    first_name: Mapped[str] = mapped_column(sa.String(100))
    last_name: Mapped[str | None] = mapped_column(sa.String(100))
    birth_year: Mapped[int | None] = mapped_column(sa.SmallInteger)
    relationship: Mapped[str] = mapped_column(sa.String(16), default=PatientRelationship.CHILD)


# Each kept span: the firsts it is worked out from. Speed to lead: capture -> the first outbound
# contact. Its split (app/domains/analytics/coordination.py): routing, capture -> the later of the
# owner's assignment and the first task; human, the first task -> the first attempt, and -> the first
# contact; a split span is null when either end is or when it would be negative.
SPAN_ENDS = {
    "speed_to_lead_seconds": ("first_outbound_contact_at",),
    "routing_seconds": ("assigned_at", "first_task_at"),
    "human_attempt_seconds": ("first_task_at", "first_attempt_at"),
    "human_contact_seconds": ("first_task_at", "first_contact_at"),
}


def kept_spans(**firsts) -> dict[str, sa.ColumnElement]:
    """The SET values of an UPDATE of leads that sets the `firsts` (column name: its new value, a
    datetime or SQL) for the kept spans worked out from them (`SPAN_ENDS`), the lead's other columns
    as stored: the writers of the firsts add them to their UPDATE, so a span never lags its ends.
    SQL, not Python: the report read the same spans worked out by the database to the last bit."""

    def end(name: str):
        value = firsts.get(name, getattr(Lead, name))
        return sa.literal(value, UTCDateTime()) if value is None or isinstance(value, datetime) else value

    def forward(start, finish):  # null when `finish` comes first (or either is null)
        return sa.case((finish >= start, spans.seconds_between(finish, start)))

    worked_out = {
        "speed_to_lead_seconds": lambda: spans.seconds_between(
            end("first_outbound_contact_at"), Lead.created_at
        ),
        "routing_seconds": lambda: forward(
            Lead.created_at, spans.later_of(end("assigned_at"), end("first_task_at"))
        ),
        "human_attempt_seconds": lambda: forward(end("first_task_at"), end("first_attempt_at")),
        "human_contact_seconds": lambda: forward(end("first_task_at"), end("first_contact_at")),
    }
    return {span: worked_out[span]() for span, ends in SPAN_ENDS.items() if firsts.keys() & set(ends)}


class DismissedDuplicate(Base):
    """Two leads staff said are not the same family: never suggested as duplicates of each other again.
    Kept once per pair, the lower id first (either order finds it)."""

    __tablename__ = "dismissed_duplicates"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "lead_low_id", "lead_high_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_low_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    lead_high_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"), index=True)
    dismissed_by: Mapped[str] = mapped_column(sa.String(64))  # actor ref: "user:3"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Suppression(Base):
    """A person who asked to be erased and must never be contacted again: keyed digests of their
    phone and email (app/domains/leads/suppression.py), never the values themselves."""

    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "digest"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    digest: Mapped[str] = mapped_column(sa.String(64))  # HMAC-SHA256 hex of "phone:+1..." / "email:..."
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
