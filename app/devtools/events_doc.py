"""docs/architecture/events.md, written from the event types the handler map lists (app/handlers.py
EVENTS): `make events-doc`; tests/events/test_event_types.py fails while the page is stale."""

from __future__ import annotations

import sys

DOC_PATH = "docs/architecture/events.md"


def main() -> None:
    from app.handlers import EVENTS

    sys.stdout.write(EVENTS.document())


if __name__ == "__main__":
    main()
