"""Events as types: each event the engine writes is a frozen dataclass of its owning domain's
`events.py`, named and versioned there, with its payload's fields as the dataclass's fields.

The outbox stores an event as its name, its version and its payload (a dict of its fields); the
rules, webhooks and reports read that payload by field name, so a field the type leaves out when
it is None (`optional()`) is absent from the payload, as it always was, rather than a null.
`Catalogue` is the engine's list of types, built from the handler map (app/handlers.py): it turns
a stored row back into its type, and writes the events' documentation (docs/architecture/events.md)
from the types themselves, so the documented payloads are the defined ones.

A consumer receives a committed event as `Delivered[E]` (`Catalogue.deliver`): the outbox row's
envelope (its id, clinic, subject, time, and the `automation` flag emit stores in the payload)
around `data`, the event as its type; it reads `event.data.lead_id`, not dict keys. What reads
fields by name (the rules' conditions, a webhook's body) reads `payload()`, the dict as stored.
A row of another version of its type is read all the same: keys the type lacks are left out of
`data` (still in `payload()`), and a field the row lacks reads its default, or None where the
type has none (as `payload.get` read it), so it is processed rather than stuck. A row whose type
name this engine does not know is not: `UnreadableEvent` fails its processing, which is retried
and ends dead on its own for an admin (app/platform/events/consumers.py), where marking it
processed would drop it unseen (no consumer of this engine is listed for it).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar, Generic, Self, TypeVar

_OMITTED_WHEN_NONE = "omitted_when_none"
_STORED_AS = "stored_as"


@dataclasses.dataclass(frozen=True)
class Event:
    """An event's payload. A subclass sets `NAME` (what the outbox and the rules call it), `VERSION`
    (raised when a field changes meaning) and `SUBJECT` (what its outbox row is about)."""

    NAME: ClassVar[str]
    VERSION: ClassVar[int] = 1
    SUBJECT: ClassVar[str] = "lead"

    def payload(self) -> dict:
        """The fields as the outbox stores them: an `optional()` field left None is left out."""
        payload = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None and field.metadata.get(_OMITTED_WHEN_NONE):
                continue
            payload[_key(field)] = value
        return payload

    @classmethod
    def from_payload(cls, payload: dict) -> Self:
        """The event a stored payload holds. Keys the type does not know (the envelope's
        `automation`, a field an older version had) are left out; a field an older event lacks
        takes its default."""
        names = {_key(field): field.name for field in dataclasses.fields(cls)}
        return cls(**{names[key]: value for key, value in payload.items() if key in names})

    @classmethod
    def from_stored(cls, payload: dict) -> Self:
        """`from_payload` for a row any version wrote: a field it lacks that has no default reads
        None (as the consumers' `payload.get` read it before the types), rather than failing."""
        lacking = {
            _key(field): None
            for field in dataclasses.fields(cls)
            if field.default is dataclasses.MISSING
            and field.default_factory is dataclasses.MISSING
            and _key(field) not in payload
        }
        return cls.from_payload({**payload, **lacking})


E = TypeVar("E", bound=Event)


@dataclasses.dataclass(frozen=True)
class Delivered(Generic[E]):
    """A committed event as its consumers receive it: `data`, the event as its type, in the
    envelope of its outbox row. `automation` False: emitted with `emit(automation=False)` (a
    historical import): consumers see it, rules do not fire on it. `stored`: the row's payload as
    written (None when built without a row: then the type's own)."""

    id: int
    clinic_id: int
    subject_type: str
    subject_id: int
    occurred_at: datetime
    data: E
    automation: bool = True
    stored: dict | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def type(self) -> str:
        """Its type's name ("lead.created"): what rule triggers and webhook subscriptions name."""
        return self.data.NAME

    def payload(self) -> dict:
        """The fields as the outbox stores them (a copy), the envelope's `"automation": false`
        included when it says so: for what reads them by name (the rules' conditions, a webhook's
        body), unchanged by the types (a row another version wrote keeps its keys)."""
        if self.stored is not None:
            return dict(self.stored)
        payload = self.data.payload()
        return payload if self.automation else {**payload, AUTOMATION_KEY: False}


# The envelope's flag, stored among the payload's fields (app/platform/events/service.py `emit`).
AUTOMATION_KEY = "automation"


class UnreadableEvent(Exception):
    """A stored event of a type name its engine does not know: its processing fails, and says why."""


def optional(default=None):
    """A payload field that is absent (not null) when None: a detail only some events carry."""
    return dataclasses.field(default=default, metadata={_OMITTED_WHEN_NONE: True})


def stored_as(key: str):
    """A payload field stored under another key than its name (a Python keyword: "from")."""
    return dataclasses.field(metadata={_STORED_AS: key})


def _key(field: dataclasses.Field) -> str:
    return field.metadata.get(_STORED_AS, field.name)


class Catalogue:
    """The engine's event types by name: what a stored event's `type` column names."""

    def __init__(self, types: Iterable[type[Event]]):
        self.types: dict[str, type[Event]] = {}
        for event_type in types:
            if event_type.NAME in self.types:
                raise ValueError(f"two event types are named {event_type.NAME!r}")
            self.types[event_type.NAME] = event_type

    def load(self, name: str, payload: dict) -> Event:
        """A stored event as its type (rows written before the types load the same way)."""
        return self.types[name].from_payload(payload)

    def deliver(self, row) -> Delivered:
        """An outbox row (app/platform/events/models.py DomainEvent) as its consumers receive it
        (`Event.from_stored`: a row of another version is read too); `UnreadableEvent` when its
        type name is none of these."""
        event_type = self.types.get(row.type)
        if event_type is None:
            raise UnreadableEvent(
                f"event {row.id} is of type {row.type!r}, which no event type of this engine is named "
                "(app/handlers.py EVENTS): left unprocessed"
            )
        payload = row.payload or {}
        return Delivered(
            id=row.id,
            clinic_id=row.clinic_id,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            occurred_at=row.occurred_at,
            data=event_type.from_stored(payload),
            automation=payload.get(AUTOMATION_KEY) is not False,
            stored=payload,
        )

    def document(self) -> str:
        """The events' reference in Markdown, from the types: names, owners, subjects and fields."""
        lines = [
            "# Events",
            "",
            "Generated from the event types (`make events-doc`; tests/events/test_event_types.py checks",
            "it). Each event is a frozen dataclass in its owning domain's `events.py`; the outbox stores",
            "its name, version and payload. A field marked *optional* is absent from the payload when",
            "it has no value. A consumer is handed the event as its type, in its row's envelope",
            "(`Delivered`: `event.data.lead_id`, `event.id`, `event.occurred_at`); the rules' conditions",
            "and webhooks read the payload as stored.",
            "",
        ]
        for name in sorted(self.types):
            event_type = self.types[name]
            owner = event_type.__module__.removeprefix("app.domains.").removesuffix(".events")
            lines += [
                f"## `{name}`",
                "",
                f"{_first_paragraph(event_type)}",
                "",
                f"Type `{event_type.__name__}` (app/domains/{owner.replace('.', '/')}/events.py), "
                f"version {event_type.VERSION}, about a {event_type.SUBJECT}.",
                "",
                "| field | type | |",
                "|---|---|---|",
            ]
            hints = typing.get_type_hints(event_type)
            for field in dataclasses.fields(event_type):
                kind = _type_cell(hints[field.name])
                note = "optional" if field.metadata.get(_OMITTED_WHEN_NONE) else ""
                lines.append(f"| `{_key(field)}` | {kind} | {note} |")
            lines.append("")
        return "\n".join(lines)


def _first_paragraph(event_type: type[Event]) -> str:
    return " ".join((event_type.__doc__ or "").strip().split("\n\n")[0].split())


def _type_cell(hint) -> str:
    """A field's type as a table cell: `int`, `str` or null (a bare "|" would end the cell)."""
    name = str(hint).replace("typing.", "").replace("<class '", "").replace("'>", "")
    if name.endswith(" | None"):
        return f"`{name.removesuffix(' | None')}` or null"
    return f"`{name}`"
