"""What a change to who a user is ends: a new password, email or role, or the user disabled.

Every token issued before dies (each carries the user's token version, which refresh and every
request check), every password-setup link still pending is spent (one sent to a mistyped address
must not open the account once the address is fixed), and once the change commits the user's open
event streams are told to read the user again (app/streaming: they close).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from app.domains.auth.models import PasswordSetupToken, User
from app.platform.db import UnitOfWork
from app.platform.stream import feed


def changes_access(user: User, data: dict) -> bool:
    """Whether the change `data` (fields to set, the email normalized) ends what the user's
    credentials and links were given for: a password, another email or role, or `active` false."""
    changed = {key for key in ("email", "role") if key in data and data[key] != getattr(user, key)}
    return bool(changed) or "password" in data or data.get("active") is False


def revoke_access(*, session: UnitOfWork, user: User, now: datetime) -> None:
    """End the user's earlier tokens and pending links, and tell their open streams after the commit."""
    user.token_version += 1
    retire_setup_tokens(session=session, user_id=user.id, now=now)
    feed.user_changed(session=session, user_id=user.id)


def retire_setup_tokens(*, session: UnitOfWork, user_id: int, now: datetime) -> None:
    """Spend every password-setup link of the user still open (a newer link replaces them, or the
    user's password, email, role or status changed)."""
    session.execute(
        sa.update(PasswordSetupToken)
        .where(PasswordSetupToken.user_id == user_id, PasswordSetupToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
