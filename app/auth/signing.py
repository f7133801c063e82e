"""Requests signed with a clinic's webhook secret: the web form (app/intake) and the SMS provider's
delivery receipts (app/notifications) sign f"{timestamp}.{body}" with HMAC-SHA256. Here, below
both, so neither imports the other. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

CLINIC_HEADER = "X-Followup-Clinic"
TIMESTAMP_HEADER = "X-Followup-Timestamp"
SIGNATURE_HEADER = "X-Followup-Signature"

# A signed request is accepted this long either side of its timestamp; a seen signature is
# remembered a little longer than the whole window, so it cannot come back while still fresh.
SIGNATURE_TOLERANCE_SECONDS = 300
REPLAY_MEMORY_SECONDS = 2 * SIGNATURE_TOLERANCE_SECONDS + 60


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """The hex HMAC-SHA256 of f"{timestamp}.{raw_body}" under the clinic's webhook secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, timestamp: str, raw_body: bytes, given: str) -> bool:
    """Constant-time comparison; accepts a "sha256=" prefix as GitHub-style senders add it."""
    given = given.strip()
    given = given.removeprefix("sha256=").lower()
    return hmac.compare_digest(sign(secret, timestamp, raw_body), given)


def timestamp_fresh(timestamp: str, now: datetime) -> bool:
    """True when the unix-seconds timestamp is within the tolerance of `now`."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    return abs(now.timestamp() - sent) <= SIGNATURE_TOLERANCE_SECONDS
