"""Engagement's events: a family opened an email or followed a message's link, counted once
(app/platform/events/types.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.platform.events.types import Event, optional


@dataclass(frozen=True)
class EmailOpened(Event):
    """An email's first counted open. `machine`: a mail proxy's fetch (Apple's), emitted only where
    the clinic counts those."""

    NAME = "email.opened"
    lead_id: int
    notification_id: int
    machine: bool


@dataclass(frozen=True)
class LinkClicked(Event):
    """A message's link followed, once per message and link (`link`: its index in the message)."""

    NAME = "link.clicked"
    lead_id: int
    notification_id: int
    link: int | None = optional()
