"""`inject`: what every view is handed rather than fetching itself — its unit of work, its actor,
its `now`, the app's settings and, for a view whose service needs a hook or cache of the handler
map, the app's Wiring."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Iterator

from app.platform import clock
from app.platform.access import current_actor
from app.platform.app_db import get_db, get_wiring, unit_of_work
from app.platform.db import UnitOfWork

INJECTED = ("uow", "actor", "now", "settings", "wiring")

# A view's unit of work is opened here only (`inject`, `streamed`), by app_db's `unit_of_work`:
# how views get their unit changes with this module's import of it.


def inject(view):
    """View decorator (the innermost, right above the `def`): pass the keyword arguments among
    `uow`, `actor`, `now`, `settings` and `wiring` that the view names.

    - `uow`: a unit of work open for the whole view, committed when it returns and rolled back when
      it raises; under `@idempotent`, the unit that decorator opened and stores the answer in. A
      view that must not hold one (a stream, a health check) does not name it.
    - `actor`: who is calling, read once; the permission check that binds it has run before, by the
      view's access declaration above this (app/platform/access.py), or the console's
      auth.check_access.
    - `now`: the request's time, read once at the edge.
    - `settings`: the app's Settings (its Database's), for the service that needs a part of them.
    - `wiring`: the app's engine (app/bootstrap.py), built once by create_app: the view passes the
      service the part it needs (a new clinic's setup steps, the rules' seeded clinics).
    """
    wanted = [name for name in INJECTED if name in inspect.signature(view).parameters]

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if "actor" in wanted:
            kwargs["actor"] = current_actor()
        if "now" in wanted:
            kwargs["now"] = clock.now()
        if "settings" in wanted:
            kwargs["settings"] = get_db().settings
        if "wiring" in wanted:
            kwargs["wiring"] = get_wiring()
        if "uow" not in wanted or "uow" in kwargs:  # @idempotent hands over the unit it stores in
            return view(*args, **kwargs)
        with unit_of_work() as uow:
            return view(*args, uow=uow, **kwargs)

    return wrapper


def streamed(rows: Callable[[UnitOfWork], Iterable]) -> Iterator:
    """A streamed answer's `rows(uow)`, read in a unit of their own: a stream is read after its
    view has returned and its unit has committed (an export's audit record with it)."""
    with unit_of_work() as uow:
        yield from rows(uow)
