"""Engagement: a family's clicks on the links of a message and the opens of an email.

A click row is one link of one message (clicks counted, the first one is the engagement); an open
row is one email (people's opens and mail proxies' fetches counted apart)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime


class MessageClick(Base):
    __tablename__ = "message_clicks"
    __table_args__ = (
        sa.UniqueConstraint("notification_id", "link", name="uq_message_clicks_notification_link"),
        sa.Index("ix_message_clicks_lead", "lead_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("notifications.id"))
    lead_id: Mapped[int | None] = mapped_column(sa.Integer)
    link: Mapped[int] = mapped_column(
        sa.Integer
    )  # the link's index among the message's tracked ones (links.trackable)
    clicks: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")  # every hit
    first_clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_clicked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MessageOpen(Base):
    __tablename__ = "message_opens"
    __table_args__ = (sa.Index("ix_message_opens_lead", "lead_id"),)

    notification_id: Mapped[int] = mapped_column(sa.ForeignKey("notifications.id"), primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    lead_id: Mapped[int | None] = mapped_column(sa.Integer)
    opens: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")  # counted as engagement
    # A mail proxy's fetch (Apple Mail Privacy Protection, Google's image proxy): not a person reading.
    machine_opens: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    first_opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when email.opened was emitted
    first_machine_open_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(16))  # sendgrid or pixel
