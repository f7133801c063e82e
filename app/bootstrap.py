"""The bootstrap: `bootstrap(settings)` builds the process's one `Wiring` from the handler map.

app/handlers.py is the map, plain data: which consumers take each event, the handler of each job
kind, the step executors, auth's moments, the send guards and composers, the receipt listeners, the
stage guards, the lead list's added filters and flags. Here that data becomes one object, built
explicitly once per process by `create_app` (web, `http=False` worker and beat apps, the CLI's app,
and so the Celery app built from it): nothing is registered by importing a module, and no layer
keeps a module-level list for anyone to fill. (The event-stream app, app/streaming/, runs no handler
and builds none.)

How each layer gets what it needs, Cosmic Python's way (its bootstrap injects a handler's
dependencies by the names of its parameters):
- a handler, consumer, executor or hook that names a dependency among its keyword parameters
  (`settings`, `executors`, `rule_cache`, `seeded_clinics`, `event_handlers`, `send_hooks`,
  `job_kinds`: each offered to what is built after it, in that order) is bound to it here with
  functools.partial (`_inject`): the events-processing job kinds' handler with the event map, the
  step job with the executors, the delivery claims with the send hooks and the settings,
  automation's consumer with its caches and the settings, the orphans' list filter with the job
  kinds;
- a view names `wiring` or `settings` among what `inject` hands it (app/platform/api/injection.py,
  the one accessor: `current_app.extensions[...]`) and passes the service what it needs (auth's
  hooks for a new clinic or user, the rules' seeded clinics, a part of the settings); a Celery task
  passes its service the settings of its app's Database (`get_db().settings`);
- work deep under a unit of work, where a parameter would cross many layers, reads it through the
  unit's Database, which create_app builds with the Wiring (`session.database.wiring`, and the
  platform's `db.job_kinds` / `db.events`): a step due now run by the rule or sequence that planned
  it (steps.py), a receipt's listeners (receipts.py), a stage move's guards (pipeline/service.py), a
  lead's flags and the list's added filters (leads/listing.py), the score models (scoring.py), the
  pacers of a send (worker/attempts.py, batches.py), the processing job a unit writes for its events
  and the ledger's kind of a row; likewise the Database's settings and Redis client
  (`session.database.settings`, `.redis`) where no caller can pass them: a lead message's booking
  link (lead_messages/templates.py), a reply's media check (lead_messages/replies.py), a webhook's
  slots (webhooks/posting.py), the live stream's messages (platform/stream/feed.py), the ledger's
  publish horizon.
  That is the one route besides parameters: no contextvar, no module global;
- what a job's handlers read once in their transaction and use again (a new lead's rule-set stamp,
  a clinic's webhook subscriptions or admins, a coordinator's missing preferences) is no
  dependency of the engine but the transaction's: a `Memo` the job runner makes for each
  transaction it opens and hands to a handler naming `memo`, which passes it down
  (app/platform/scheduling/memo.py). The unit of work carries none of these.

The caches that hold state (automation's compiled rules and seeded clinics, intelligence's score
models, the providers' pacers) belong to the Wiring too: two Wirings share none, and `clear()`
empties one without touching the other.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from app import handlers
from app.domains.auth.service import AuthHooks
from app.domains.leads.listing import ListExtensions
from app.domains.outbound.providers.pacing import Pacers
from app.domains.outbound.worker.sending import SendHooks
from app.platform.app_db import WIRING
from app.platform.config import Settings
from app.platform.events.consumer_map import EventHandlers
from app.platform.events.types import Catalogue
from app.platform.scheduling.registry import JobKind, JobKinds


@dataclass
class Caches:
    """The process's caches that hold state: each owned by one Wiring, emptied by `clear()`.

    `rules`: automation's compiled active rules by (clinic, trigger), with the stamp they were read
    at (app/domains/automation/processing.py); `seeded_clinics`: clinics whose default rules this
    process has made sure of (app/domains/automation/service.py); `score_models`: intelligence's
    models by clinic, with when they were read (app/domains/intelligence/scoring.py); `pacers`: the
    providers' pacers on Redis, by process and Redis (app/domains/outbound/providers/pacing.py)."""

    rules: dict = field(default_factory=dict)
    seeded_clinics: set = field(default_factory=set)
    score_models: dict = field(default_factory=dict)
    pacers: Pacers = field(default_factory=Pacers)

    def clear(self) -> None:
        self.rules.clear()
        self.seeded_clinics.clear()
        self.score_models.clear()
        self.pacers.clear()


@dataclass(frozen=True)
class Wiring:
    """One process's engine: the handler map made runnable, and the caches it owns (see the module
    docstring for how each layer is handed its part)."""

    settings: Settings
    events: EventHandlers
    job_kinds: JobKinds
    step_executors: Mapping[str, Callable]
    auth: AuthHooks
    send_hooks: SendHooks
    receipt_listeners: tuple[Callable, ...]
    stage_guards: tuple[Callable, ...]
    lead_list: ListExtensions
    caches: Caches

    def clear(self) -> None:
        """Empty this Wiring's caches (a test between cases, after training new score models)."""
        self.caches.clear()


EXTENSION = WIRING  # where create_app keeps the app's Wiring (a view is handed it by `inject`)


def wiring_of(app) -> Wiring:
    """The Wiring `create_app` built for `app` (a view is handed it by app/platform/api/injection.py)."""
    return app.extensions[EXTENSION]


def bootstrap(settings: Settings, *, plugins: Iterable[str] = ()) -> Wiring:
    """Build the engine of one process from the handler map (app/handlers.py) and `plugins`
    (FOLLOWUP_PLUGINS: modules whose JOB_KINDS and EVENT_HANDLERS are added, for tests and
    benchmarks). Importing the map registers nothing: this call is what makes it run."""
    extra_kinds, extra_consumers = _plugins(plugins)
    caches = Caches()
    executors: dict[str, Callable] = {}  # filled below: an executor may itself need the executors
    # What a handler may name among its parameters, offered to everything built after it is added.
    dependencies = {
        "settings": settings,
        "executors": executors,
        "rule_cache": caches.rules,
        "seeded_clinics": caches.seeded_clinics,
    }
    executors.update({name: _inject(run, dependencies) for name, run in handlers.STEP_EXECUTORS.items()})
    consumers: dict[str, list[Callable]] = {}
    for event_type, listed in [*handlers.EVENT_HANDLERS.items(), *extra_consumers]:
        consumers.setdefault(event_type.NAME, []).extend(_inject(c, dependencies) for c in listed)
    events = EventHandlers(
        consumers,
        after_events=[_inject(c, dependencies) for c in handlers.AFTER_EVENTS],
        later_types=[event_type.NAME for event_type in handlers.PROCESSED_LATER],
        # The plugins' event types are read back as theirs too (a test's event, its consumer's).
        catalogue=Catalogue({*handlers.EVENTS.types.values(), *(t for t, _ in extra_consumers)}),
    )
    dependencies["event_handlers"] = events
    dependencies["send_hooks"] = send_hooks = SendHooks(
        guards=tuple(_inject(g, dependencies) for g in handlers.SEND_GUARDS),
        composers=tuple(_inject(c, dependencies) for c in handlers.COMPOSERS),
    )
    job_kinds = JobKinds(_bound_kind(kind, dependencies) for kind in [*handlers.JOB_KINDS, *extra_kinds])
    dependencies["job_kinds"] = job_kinds
    return Wiring(
        settings=settings,
        events=events,
        job_kinds=job_kinds,
        step_executors=executors,
        auth=AuthHooks(
            clinic_setup=tuple(_inject(step, dependencies) for step in handlers.CLINIC_SETUP),
            user_unavailable=tuple(_inject(h, dependencies) for h in handlers.USER_UNAVAILABLE),
            user_invited=tuple(_inject(h, dependencies) for h in handlers.USER_INVITED),
            user_available=tuple(_inject(h, dependencies) for h in handlers.USER_AVAILABLE),
        ),
        send_hooks=send_hooks,
        receipt_listeners=tuple(_inject(h, dependencies) for h in handlers.RECEIPT_LISTENERS),
        stage_guards=tuple(_inject(g, dependencies) for g in handlers.STAGE_GUARDS),
        lead_list=ListExtensions(
            filters={name: _inject(c, dependencies) for name, c in handlers.LEAD_LIST_FILTERS.items()},
            flags={name: _inject(h, dependencies) for name, h in handlers.LEAD_FLAGS.items()},
        ),
        caches=caches,
    )


def _inject(function: Callable, dependencies: Mapping[str, object]) -> Callable:
    """`function` with the dependencies its keyword parameters name bound (itself if it names none)."""
    target = function.func if isinstance(function, functools.partial) else function
    names = inspect.signature(target).parameters
    wanted = {name: value for name, value in dependencies.items() if name in names}
    return functools.partial(function, **wanted) if wanted else function


def _bound_kind(kind: JobKind, dependencies: Mapping[str, object]) -> JobKind:
    return dataclasses.replace(kind, handler=_inject(kind.handler, dependencies))


def _plugins(modules: Iterable[str]) -> tuple[list[JobKind], list[tuple]]:
    """The JOB_KINDS and EVENT_HANDLERS (event type -> consumers) of each plugin module."""
    kinds, consumers = [], []
    for name in modules:
        module = importlib.import_module(name)
        kinds.extend(getattr(module, "JOB_KINDS", ()))
        consumers.extend(getattr(module, "EVENT_HANDLERS", {}).items())
    return kinds, consumers
