"""The app's Database and Wiring, for views and Celery tasks (which pass them, or the part a
service needs, on to the services): the one place that finds them on the running Flask app.
Services take theirs, or a unit of work, as an argument."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app

from app.platform.db import Database, UnitOfWork

WIRING = "followup.wiring"  # where create_app keeps the app's Wiring (app/bootstrap.py)


def get_db() -> Database:
    return current_app.extensions["followup.db"]


def get_wiring():
    """The engine create_app built for this app (app/bootstrap.py Wiring): its handler map's hooks
    and caches, which a view hands the service that needs them."""
    return current_app.extensions[WIRING]


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    with get_db().unit_of_work() as uow:
        yield uow
