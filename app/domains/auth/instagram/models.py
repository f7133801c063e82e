"""A clinic's connected Instagram professional account, and the Instagram users (IGSIDs) that wrote to it.

Both sit in auth, below every domain that uses them: the webhook (intake) routes a DM by the
account it was sent to and finds the lead of its sender; the provider (outbound) sends with the
account's token to the lead's IGSID. The leads table is only pointed at, by its name.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.platform.db import Base, UTCDateTime
from app.platform.db.protected import EncryptedString


class InstagramAccount(Base):
    """One per clinic at most; an Instagram account in one clinic only (Meta routes its DMs by it)."""

    __tablename__ = "instagram_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"), unique=True)
    account_id: Mapped[str] = mapped_column(sa.String(64), unique=True)  # Meta's IG_ID of the account
    # A Graph user access token sends as the clinic: a secret, encrypted like PHI, never answered.
    access_token: Mapped[str] = mapped_column(EncryptedString)
    token_hint: Mapped[str] = mapped_column(sa.String(8))  # its last 4 characters, for the masked answer
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    connected_by: Mapped[str] = mapped_column(sa.String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class InstagramContact(Base):
    """An Instagram user who wrote to the clinic's account, by the Instagram-scoped id Meta gives it
    (the id is per professional account), and the lead it is."""

    __tablename__ = "instagram_contacts"
    __table_args__ = (sa.UniqueConstraint("clinic_id", "igsid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    clinic_id: Mapped[int] = mapped_column(sa.ForeignKey("clinics.id"))
    igsid: Mapped[str] = mapped_column(sa.String(64))
    lead_id: Mapped[int] = mapped_column(sa.ForeignKey("leads.id"), index=True)
    handle: Mapped[str | None] = mapped_column(sa.String(64))  # @username, as the profile says
    # When the family last wrote: Meta's messaging windows (24 h automated, 7 days a person) run from it.
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
