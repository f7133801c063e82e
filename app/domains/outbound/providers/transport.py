"""What every transport shares: the message one attempt sends, and the errors a send ends in.

Every send either returns the provider's message id or raises one of three errors, which decide what
delivery does next: TransientError (retry with backoff), PermanentError (failed, no retry) and
OutcomeUnknown (the message went out and no answer came back: for email nobody can tell whether it
was accepted, so it is not re-sent blindly).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from email.utils import formataddr, parseaddr


class SendError(Exception):
    """A send did not succeed; the subclass says whether trying again can help."""


class TransientError(SendError):
    """Connection refused, timeout, SMTP 4xx, HTTP 429/5xx: try again later."""


class PermanentError(SendError):
    """Invalid address, SMTP 5xx, HTTP 4xx: trying again would fail the same way."""


class OutcomeUnknown(SendError):
    """The whole message was handed over and the answer never came (timeout, dropped connection)."""


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends; built from the notification row inside the claim transaction."""

    notification_id: int
    channel: str  # email | sms | instagram | whatsapp
    to: str
    sender: str
    subject: str
    text: str
    html: str | None
    dedupe_key: str
    unsubscribe_url: str | None = None  # an email to a lead: its one-click unsubscribe (RFC 8058)
    unsubscribe_mailto: str | None = None  # and the address an email unsubscribes it by
    reply_to: str | None = None  # an email to a lead: the address that routes its reply back to it
    # A channel that sends as the clinic's own account (Instagram): its token. Never printed.
    credential: str | None = field(default=None, repr=False)
    tag: str | None = None  # Instagram: Meta's message tag (HUMAN_AGENT: a person's late reply)
    # WhatsApp outside its 24-hour window: the approved template (Twilio's Content API) instead of text.
    content_sid: str | None = None
    content_variables: str | None = None  # its placeholders' values, a JSON object
    # An image or video sent with it (an MMS's MediaUrl, an Instagram attachment): its URL and kind.
    media_url: str | None = None
    media_kind: str | None = None


def message_id(message: Outgoing) -> str:
    """A Message-ID derived from the dedupe key: every attempt of one notification carries the same one."""
    # The address's domain, not the raw header's: "Name <a@b.c>" would leave a ">" in the id.
    domain = address_of(message.sender).rpartition("@")[2] or "followup.local"
    return f"<{hashlib.sha256(message.dedupe_key.encode()).hexdigest()[:32]}@{domain}>"


@functools.lru_cache(maxsize=256)
def address_of(sender: str) -> str:
    """The plain address of a From value ("Name <a@b.c>" -> "a@b.c"); a clinic has one, so cached."""
    return parseaddr(sender)[1]


def format_sender(name: str | None, address: str) -> str:
    return formataddr((name, address)) if name else address
