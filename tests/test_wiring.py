"""One engine per process, built by the bootstrap, never by an import (issue 61 item 1): app/bootstrap.py
turns the handler map (app/handlers.py) into a `Wiring` that owns the event map, the job kinds, the
step executors, the hooks and the caches. Two built side by side share nothing; importing every
module of app/ registers nothing, and building engines fills no module-level list, dict or set; the
app every process builds (web, workers, beat, the CLI) holds the whole map, in the map's order."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

from app.bootstrap import bootstrap, wiring_of
from app.domains.automation import steps
from app.domains.leads.events import LeadCreated
from app.handlers import EVENT_HANDLERS, JOB_KINDS, STEP_EXECUTORS
from app.platform.config import Settings
from app.platform.events.consumers import PROCESS_KIND

ROOT = Path(__file__).resolve().parent.parent


def _unbound(function):
    return function.func if isinstance(function, functools.partial) else function


def test_two_engines_built_side_by_side_share_nothing():
    first, second = bootstrap(Settings()), bootstrap(Settings())

    assert first.events is not second.events and first.job_kinds is not second.job_kinds
    assert first.step_executors is not second.step_executors and first.caches is not second.caches
    # Each engine's events-processing job runs its own event map, and its steps its own executors.
    for wiring in (first, second):
        assert wiring.job_kinds.kind_of(PROCESS_KIND).handler.keywords["event_handlers"] is wiring.events
        assert (
            wiring.job_kinds.kind_of(steps.STEP_KIND).handler.keywords["executors"] is wiring.step_executors
        )
    # Automation's consumer is bound to its own engine's rule cache: a rule compiled in one is not
    # served by the other.
    [rules_of_first] = [
        c for c in first.events.consumers_of(LeadCreated.NAME) if "rule_cache" in getattr(c, "keywords", {})
    ]
    [rules_of_second] = [
        c for c in second.events.consumers_of(LeadCreated.NAME) if "rule_cache" in getattr(c, "keywords", {})
    ]
    assert rules_of_first.keywords["rule_cache"] is first.caches.rules
    assert rules_of_second.keywords["rule_cache"] is second.caches.rules
    assert first.caches.rules is not second.caches.rules

    first.caches.rules[(1, "lead.created")] = ((1,), [])
    first.caches.seeded_clinics.add(1)
    first.caches.score_models[1] = (0.0, None)
    second.caches.seeded_clinics.add(2)
    assert second.caches.rules == {} and second.caches.score_models == {}
    first.clear()
    assert (
        first.caches.rules == {} and first.caches.seeded_clinics == set() and first.caches.score_models == {}
    )
    assert second.caches.seeded_clinics == {2}  # clearing one engine leaves the other's caches


_IMPORT_EVERYTHING_THEN_BOOTSTRAP = """
import importlib, pkgutil, sys
import app

for found in pkgutil.walk_packages(app.__path__, "app."):
    importlib.import_module(found.name)

def containers():
    sizes = {}
    for name, module in list(sys.modules.items()):
        if name == "app" or name.startswith("app."):
            for attribute, value in vars(module).items():
                if type(value) in (dict, list, set):
                    sizes[f"{name}.{attribute}"] = len(value)
    return sizes

before = containers()
from app.bootstrap import bootstrap
from app.platform.config import Settings
engines = [bootstrap(Settings()), bootstrap(Settings())]
after = containers()
filled = sorted(key for key in before if after.get(key) != before[key])
print("filled:", ",".join(filled))
print("kinds:", len(engines[0].job_kinds.names()))
"""


def test_importing_every_module_registers_nothing_and_bootstrapping_fills_no_module_state():
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERYTHING_THEN_BOOTSTRAP],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    lines = dict(
        line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in ran.stdout.splitlines()
    )
    assert lines["filled"] == ""  # no module-level list, dict or set took anything from two bootstraps
    assert int(lines["kinds"]) == len(JOB_KINDS)


def test_the_old_registries_and_their_filling_functions_are_gone():
    from app import handlers
    from app.domains.auth import service as auth
    from app.domains.automation import processing
    from app.domains.automation import service as automation
    from app.domains.intelligence import scoring
    from app.domains.leads import listing
    from app.domains.outbound import receipts
    from app.domains.outbound.providers import pacing
    from app.domains.outbound.worker import sending
    from app.platform.events import consumers
    from app.platform.scheduling import registry

    gone = {
        handlers: ("wire", "_wired"),
        consumers: (
            "on",
            "after_events",
            "process_later",
            "consumers_of",
            "_CONSUMERS",
            "_AFTER_EVENTS",
            "_LATER_TYPES",
        ),
        registry: ("register", "kind_of", "registered_kinds", "derived_kinds", "_KINDS"),
        steps: ("register_executor", "_EXECUTORS"),
        auth: ("on_clinic_created", "on_user_unavailable", "on_user_invited", "CLINIC_SETUP_STEPS"),
        sending: ("on_send", "on_compose", "_SEND_GUARDS", "_COMPOSERS"),
        receipts: ("on_status_change", "_LISTENERS"),
        listing: ("add_list_filter", "add_flag", "_ADDED_FILTERS", "_FLAGS"),
        automation: ("_SEEDED",),
        processing: ("_RULE_CACHE",),
        scoring: ("_MODELS",),
        pacing: ("_pacers",),
    }
    left = [
        f"{module.__name__}.{name}"
        for module, names in gone.items()
        for name in names
        if hasattr(module, name)
    ]
    assert left == []


def test_the_apps_factory_builds_the_whole_map_in_its_order(app, db):
    wiring = wiring_of(app)
    assert db.wiring is wiring  # the Database carries the app's engine to the ledger and deep work
    consumers = [_unbound(c) for c in wiring.events.consumers_of(LeadCreated.NAME)]
    assert consumers[: len(EVENT_HANDLERS[LeadCreated])] == EVENT_HANDLERS[LeadCreated]
    assert {kind.name for kind in JOB_KINDS} <= set(wiring.job_kinds.names())
    assert {name: _unbound(run) for name, run in wiring.step_executors.items()} == STEP_EXECUTORS
