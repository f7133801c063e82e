"""Lead activities and their enums."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, JSONType, UTCDateTime
from app.platform.db.protected import EncryptedString


class ActivityType(StrEnum):
    PHONE_CALL = "PHONE_CALL"
    EMAIL = "EMAIL"
    SMS = "SMS"
    # A direct message on a social channel (Instagram): details["channel"] names which.
    DIRECT_MESSAGE = "DIRECT_MESSAGE"
    IN_PERSON = "IN_PERSON"
    NOTE = "NOTE"
    STAGE_CHANGE = "STAGE_CHANGE"
    ASSIGNMENT_CHANGE = "ASSIGNMENT_CHANGE"
    TASK_COMPLETED = "TASK_COMPLETED"
    DOCUMENT_SENT = "DOCUMENT_SENT"
    CONSULTATION_SCHEDULED = "CONSULTATION_SCHEDULED"
    CONSULTATION_COMPLETED = "CONSULTATION_COMPLETED"
    CONSULTATION_NO_SHOW = "CONSULTATION_NO_SHOW"  # a missed consultation
    PRIORITY_CHANGE = "PRIORITY_CHANGE"  # the lead's priority (normal, high, urgent) changed


# Written by the system as a side effect of another use case; a client cannot log them.
SYSTEM_TYPES = frozenset(
    {
        ActivityType.STAGE_CHANGE,
        ActivityType.ASSIGNMENT_CHANGE,
        ActivityType.TASK_COMPLETED,
        ActivityType.PRIORITY_CHANGE,
    }
)
CLIENT_TYPES = tuple(t for t in ActivityType if t not in SYSTEM_TYPES)


class ActivityDirection(StrEnum):
    INBOUND = "INBOUND"
    OUTBOUND = "OUTBOUND"


class CallOutcome(StrEnum):
    SPOKE = "spoke"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    WRONG_NUMBER = "wrong_number"
    CALLBACK_REQUESTED = "callback_requested"
    # The family answered and decided: the lead closes that way (app/domains/pipeline/outcomes.py).
    NOT_INTERESTED = "not_interested"
    CONVERTED = "converted"


# The automated outbound messages the reports count (analytics.rollups.automated_message, over its
# MESSAGE_TYPES), as the partial index's literal predicate: a type counted but not listed here makes
# the reports scan every activity.
AUTOMATED_MESSAGE = (
    "direction = 'OUTBOUND' AND actor = 'system' AND type IN ('EMAIL', 'SMS', 'DIRECT_MESSAGE')"
)


class LeadActivity(Base):
    __tablename__ = "lead_activities"
    __table_args__ = (
        # The timeline: WHERE lead_id = ? ORDER BY occurred_at DESC, id DESC LIMIT n.
        sa.Index("ix_lead_activities_lead_occurred", "lead_id", "occurred_at", "id"),
        # Reports and rules by kind over a clinic ("calls this week", "inbound contact since").
        sa.Index("ix_lead_activities_clinic_type_occurred", "clinic_id", "type", "occurred_at"),
        # Analytics: a lead's first outbound contact, MIN(occurred_at) by an index probe per lead.
        sa.Index("ix_lead_activities_lead_direction_occurred", "lead_id", "direction", "occurred_at"),
        # Analytics: automated messages in a range, whether and when they were answered, and the
        # ids naming their thread message and step (follow-up response), from the index alone.
        sa.Index(
            "ix_lead_activities_automated_messages",
            "clinic_id",
            "occurred_at",
            postgresql_include=[
                "lead_id",
                "replied",
                "replied_at",
                "type",
                "details",
                # ... and a short range's channel, sequence and time to reply (follow-up response).
                "message_channel",
                "message_sequence_id",
                "reply_seconds",
            ],
            postgresql_where=sa.text(AUTOMATED_MESSAGE),
            sqlite_where=sa.text(AUTOMATED_MESSAGE),
        ),
        # Follow-up response's medians over a long range: a range's replied automated messages
        # already in channel (sequence) order, each group's times to reply sorted (its median's
        # sort finds them in order), the range a filter on the index: no sort by group, and none of
        # the unanswered messages (their counts come from the message months).
        *[
            sa.Index(
                f"ix_lead_activities_replied_by_{group}",
                "clinic_id",
                f"message_{group}",
                "reply_seconds",
                "occurred_at",
                postgresql_include=["lead_id"],
                postgresql_where=sa.text(f"{AUTOMATED_MESSAGE} AND replied"),
                sqlite_where=sa.text(f"{AUTOMATED_MESSAGE} AND replied"),
            )
            for group in ("channel", "sequence_id")
        ],
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"))
    type: Mapped[str] = mapped_column(sa.String(32))
    direction: Mapped[str | None] = mapped_column(sa.String(16))
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    notes: Mapped[str | None] = mapped_column(EncryptedString)  # PHI: what was said
    duration_minutes: Mapped[int | None] = mapped_column(sa.Integer)
    previous_stage: Mapped[str | None] = mapped_column(sa.String(64))
    new_stage: Mapped[str | None] = mapped_column(sa.String(64))
    # Structured facts of system activities, e.g. an assignment's from/to user ids and reason.
    details: Mapped[dict | None] = mapped_column(JSONType)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id"))  # null: system or API key
    actor: Mapped[str] = mapped_column(sa.String(64))  # "user:3", "api_key:2", "system", "web_form"
    # On an automated message: answered within the reply window (app/domains/analytics/rollups.py).
    replied: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # ... and when the family first answered it (the follow-up response report's time to reply).
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # ... the seconds from the message to that reply (replied_at - occurred_at, kept with it) ...
    reply_seconds: Mapped[float | None] = mapped_column(sa.Float)
    # ... and the channel and sequence the report counts it under, from its thread message and its
    # automation step (the rollups keep them: the report groups by them without joining).
    message_channel: Mapped[str | None] = mapped_column(sa.String(32))
    # Not a foreign key: activities sit below automation; sequences are never deleted.
    message_sequence_id: Mapped[int | None] = mapped_column(sa.Integer)
    # An inbound email or SMS: positive, neutral, negative or unknown (app/domains/intelligence).
    sentiment: Mapped[str | None] = mapped_column(sa.String(16))
