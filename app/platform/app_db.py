"""The app's Database, for views and Celery tasks (which pass it on to the services): the one
place that finds it on the running Flask app. Services take theirs, or a unit of work, as an
argument."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app

from app.platform.db import Database, UnitOfWork


def get_db() -> Database:
    return current_app.extensions["followup.db"]


@contextmanager
def unit_of_work() -> Iterator[UnitOfWork]:
    with get_db().unit_of_work() as uow:
        yield uow
