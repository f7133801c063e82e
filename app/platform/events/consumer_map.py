"""The event side of one engine's handler map: which consumers take each committed event, what runs
once after them, and which event types are processed later (on the timers queue).

Built once per process by app/bootstrap.py from EVENT_HANDLERS, AFTER_EVENTS, PROCESSED_LATER and
EVENTS (the catalogue a stored row is read back as its type with) of app/handlers.py, and handed on
explicitly: bound into the events-processing job kinds' handler
(`consumers.process_events`), and carried by the Database (`db.events`) for the processing job a
unit of work writes as it commits (`consumers.processing_job`). No module-level registry:
two engines built side by side hold two maps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from app.platform.events.types import Catalogue

ANY_TYPE = "*"  # a consumer listed under it takes every event, after the type's own


class EventHandlers:
    """Consumers by event type name (`consumer(session=, event=, now=)`, `event` a `Delivered` of
    the type; and `memo=`, its transaction's Memo, for a consumer that names it), in the order listed;
    `after_events` (`consumer(session=, events=, now=)`, a list of them), once per processing with
    all its events, for a consumer that works per subject rather than per event; `later_types`:
    event types processed as PROCESS_LATER_KIND when a transaction emits no other type (a sweep's
    hundreds of overdue tasks must never hold the realtime queue's new leads back); `catalogue`:
    the types the stored rows are read back as."""

    def __init__(
        self,
        consumers: Mapping[str, Sequence[Callable]] | None = None,
        after_events: Iterable[Callable] = (),
        later_types: Iterable[str] = (),
        catalogue: Catalogue | None = None,
    ):
        self._consumers = {event_type: tuple(listed) for event_type, listed in (consumers or {}).items()}
        self.after_events = tuple(after_events)
        self.later_types = frozenset(later_types)
        self.catalogue = catalogue if catalogue is not None else Catalogue(())

    def consumers_of(self, event_type: str) -> list[Callable]:
        return [*self._consumers.get(event_type, ()), *self._consumers.get(ANY_TYPE, ())]

    def all_later(self, event_types: Iterable[str]) -> bool:
        return all(event_type in self.later_types for event_type in event_types)
