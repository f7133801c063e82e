"""A plugin (app/bootstrap.py `plugins`) whose consumer of lead.created fails once, after the map's
own consumers of it: a test builds an engine with it and hands it to the app's Database."""

from __future__ import annotations

from app.domains.leads.events import LeadCreated

FAILURES: list[int] = []  # the events it failed on; emptied by the test that uses it


def fail_once(*, session, event, now) -> None:
    if not FAILURES:
        FAILURES.append(event.id)
        raise RuntimeError("a later consumer failed")


EVENT_HANDLERS = {LeadCreated: [fail_once]}
