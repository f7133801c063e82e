"""WhatsApp's 24-hour window and its approved templates.

WhatsApp takes a free-form message only within 24 hours of the family's last WhatsApp message;
outside that window only a template WhatsApp approved goes, sent through Twilio's Content API as a
`ContentSid` (HX + 32 hex) with its `ContentVariables` (a JSON object of "1", "2", ... to text).
The window opens with each inbound WhatsApp message of the lead's thread (an auto-reply too: it is
the family's number writing), so it is read from the thread itself, never stored twice.

Which one a message goes as is decided once, when it is queued (`choose`): inside the window its
free-form text, outside it (or with no text) the template; the choice rides on the notification's
context (outbound's WHATSAPP_TEMPLATE) to the worker, which sends it as Twilio expects.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.conversations.models import INBOUND, Conversation, ConversationMessage
from app.domains.outbound.models import CONTENT_SID, CONTENT_SID_FORM, Channel, WhatsAppTemplate
from app.platform import clock
from app.platform.db import UnitOfWork

MAX_VARIABLES = 20
MAX_VARIABLE_LENGTH = 1024
VARIABLE_NAME = re.compile(r"^[1-9][0-9]?$")
# WhatsApp takes a free-form message only within 24 hours of the family's last WhatsApp message.
WINDOW = timedelta(hours=24)
WINDOW_CLOSED = "outside WhatsApp's 24-hour window"


def variable_errors(value) -> list[str]:
    """What is wrong with a `content_variables` value: an object of "1".."99" to short texts."""
    if not isinstance(value, dict):
        return ['an object of placeholder numbers to texts, e.g. {"1": "Jane"}']
    if len(value) > MAX_VARIABLES:
        return [f"at most {MAX_VARIABLES} variables"]
    for name, text in value.items():
        if not isinstance(name, str) or not VARIABLE_NAME.match(name):
            return [f"{name!r}: placeholder names are numbers 1 to 99, as in the template ({{{{1}}}})"]
        if not isinstance(text, str) or len(text) > MAX_VARIABLE_LENGTH:
            return [f"{name}: a text of at most {MAX_VARIABLE_LENGTH} characters"]
    return []


def template_errors(values: dict) -> dict[str, list[str]]:
    """The fields of a WhatsApp message's template that are wrong ({} when none are): the
    content_sid's form, and variables given only with a content_sid."""
    problems: dict[str, list[str]] = {}
    sid = values.get("content_sid")
    if sid is not None and (not isinstance(sid, str) or not CONTENT_SID.match(sid)):
        problems["content_sid"] = [CONTENT_SID_FORM]
    if "content_variables" in values:
        if sid is None:
            problems["content_variables"] = ["given only with a content_sid"]
        elif errors := variable_errors(values["content_variables"]):
            problems["content_variables"] = errors
    return problems


def last_inbound_at(session: UnitOfWork, lead_id: int) -> datetime | None:
    """When the family last wrote to the lead's thread on WhatsApp: the window's opening."""
    found = session.scalar(
        sa.select(sa.func.max(ConversationMessage.occurred_at))
        .join(Conversation, Conversation.id == ConversationMessage.conversation_id)
        .where(
            Conversation.lead_id == lead_id,
            ConversationMessage.channel == Channel.WHATSAPP.value,
            ConversationMessage.direction == INBOUND,
        )
    )
    return clock.as_utc(found)


def window_closed(session: UnitOfWork, lead_id: int, at: datetime) -> str | None:
    """Why a free-form WhatsApp message at `at` may not go (the window is closed), or None."""
    return window_reason(last_inbound_at(session, lead_id), at)


def window_reason(opened_at: datetime | None, at: datetime) -> str | None:
    """Why a free-form WhatsApp message at `at` may not go (no approved template given), or None."""
    if opened_at is not None and at < opened_at + WINDOW:
        return None
    if opened_at is None:
        last = "the family has not written on WhatsApp"
    else:
        last = f"the family last wrote on WhatsApp at {opened_at.isoformat()}"
    return f"{WINDOW_CLOSED} and no approved template (content_sid) given: {last}"


def choose(
    session: UnitOfWork, lead_id: int, message: tuple[str | None, WhatsAppTemplate | None], at: datetime
) -> tuple[str | None, WhatsAppTemplate | None, str | None]:
    """(free-form body or None, template or None, why neither may go or None) for a WhatsApp message
    of `body` and `template` at `at`: the text inside the window, the template outside it (or when
    there is no text)."""
    body, template = message
    closed = window_closed(session, lead_id, at)
    if closed is None and body:
        return body, None, None
    if template is not None:
        return None, template, None
    if closed is None:
        return None, None, "a WhatsApp message needs a body or a content_sid"
    return None, None, closed


def shown(template: WhatsAppTemplate) -> str:
    """How a message sent as a template reads in the thread: the template and its values."""
    values = ", ".join(f"{name}={text}" for name, text in sorted(template.variables.items()))
    return f"WhatsApp template {template.content_sid}" + (f" ({values})" if values else "")
