"""The analytics tables: monthly lead counts, what each lead was last counted as in them, and monthly
counts of automated messages and of tasks."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base


class LeadMonth(Base):
    """One row per (clinic, month of capture (UTC), owner, source, reached stage, lost reason): how
    many of the clinic's non-deleted leads are there (see app/domains/analytics/monthly.py). Nullable parts
    of the key are stored as 0 / '' so the key can be a primary key (upsert target)."""

    __tablename__ = "analytics_lead_months"

    clinic_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    coordinator_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 0: none
    source_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 0: none
    reached_stage: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    lost_reason: Mapped[str] = mapped_column(sa.String(32), primary_key=True)  # '': none
    leads: Mapped[int] = mapped_column(sa.Integer, default=0)
    converted: Mapped[int] = mapped_column(sa.Integer, default=0)
    lost: Mapped[int] = mapped_column(sa.Integer, default=0)
    within_5_min: Mapped[int] = mapped_column(sa.Integer, default=0)


class CountedLead(Base):
    """Where one lead is counted in `LeadMonth` now: the event consumer moves it by the difference
    between this and the lead's current facts, so counting the same lead again changes nothing.
    `month` NULL: counted nowhere (deleted). No row: never counted."""

    __tablename__ = "analytics_counted_leads"

    lead_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    clinic_id: Mapped[int] = mapped_column(sa.Integer)
    month: Mapped[date | None] = mapped_column(sa.Date)
    coordinator_id: Mapped[int] = mapped_column(sa.Integer, default=0)
    source_id: Mapped[int] = mapped_column(sa.Integer, default=0)
    reached_stage: Mapped[str] = mapped_column(sa.String(64), default="")
    lost_reason: Mapped[str] = mapped_column(sa.String(32), default="")
    converted: Mapped[int] = mapped_column(sa.Integer, default=0)
    lost: Mapped[int] = mapped_column(sa.Integer, default=0)
    within_5_min: Mapped[int] = mapped_column(sa.Integer, default=0)


class MessageMonth(Base):
    """Changes to the counts of a clinic's automated messages sent in a UTC month, by channel,
    sequence and reply-time bucket: the counts are the sums of the rows. The database's triggers on
    lead_activities add a row for every write that changes a message's counts (migration 0071); a
    sweep folds a month's rows (app/domains/analytics/month_changes.py)."""

    __tablename__ = "analytics_message_months"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.Integer)
    month: Mapped[date] = mapped_column(sa.Date)
    channel: Mapped[str] = mapped_column(sa.String(32))  # '': none yet
    sequence_id: Mapped[int] = mapped_column(sa.Integer)  # 0: a rule's message, no sequence
    # The seconds to the reply, bucketed (analytics.queries.reply_bucket); -1: not replied.
    reply_bucket: Mapped[int] = mapped_column(sa.Integer)
    messages: Mapped[int] = mapped_column(sa.Integer, default=0)
    replied: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (sa.Index("ix_analytics_message_months_clinic_month", "clinic_id", "month"),)


class TaskMonth(Base):
    """Changes to the counts of a clinic's tasks due in a UTC month: the month's counts are the sums
    of its rows. The database's triggers on lead_tasks add a row for every write that changes what a
    task counts as (migration 0070); a sweep folds a month's rows into one
    (app/domains/analytics/month_changes.py)."""

    __tablename__ = "analytics_task_months"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.Integer)
    month: Mapped[date] = mapped_column(sa.Date)
    due: Mapped[int] = mapped_column(sa.Integer, default=0)
    completed: Mapped[int] = mapped_column(sa.Integer, default=0)
    on_time: Mapped[int] = mapped_column(sa.Integer, default=0)  # completed by the due time
    cancelled: Mapped[int] = mapped_column(sa.Integer, default=0)
    still_open: Mapped[int] = mapped_column(sa.Integer, default=0)
    # By outcome (tasks.models.TaskOutcome's values).
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    no_answer: Mapped[int] = mapped_column(sa.Integer, default=0)
    rescheduled: Mapped[int] = mapped_column(sa.Integer, default=0)
    not_needed: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (sa.Index("ix_analytics_task_months_clinic_month", "clinic_id", "month"),)
