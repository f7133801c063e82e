"""Outbound's event: a message to a lead could not be delivered (app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event, optional


@dataclass(frozen=True)
class MessageBounced(Event):
    """A provider reported a message undeliverable: an email's bounce (`hard`), or a text's or a
    WhatsApp message's permanent failure with the provider's `error_code`."""

    NAME = "message.bounced"
    lead_id: int
    channel: str
    notification_id: int | None
    hard: bool
    permanent: bool | None = optional()
    error_code: str | None = optional()
