"""The handler map is installed by the app factory, never by an import (issue 61 item 1's first
step): a script that imports every domain, the handler map included, gets no consumer and no job
kind behind its back; the app every process builds (web, workers, beat, the CLI) has them all, in
the map's order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.domains.leads.events import LeadCreated
from app.handlers import EVENT_HANDLERS, JOB_KINDS
from app.platform.events import consumers
from app.platform.scheduling import registry

ROOT = Path(__file__).resolve().parent.parent

_IMPORT_ONLY = """
import app.domains, app.handlers, app.domains.intake.service
from app.platform.events import consumers
from app.platform.scheduling import registry
print(len(consumers.consumers_of("lead.created")), len(registry.registered_kinds()))
"""


def test_importing_the_domains_and_the_handler_map_installs_nothing():
    ran = subprocess.run(
        [sys.executable, "-c", _IMPORT_ONLY], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["0", "0"]


def test_the_apps_factory_installs_the_whole_map_in_its_order(app):
    assert (
        consumers.consumers_of(LeadCreated.NAME)[: len(EVENT_HANDLERS[LeadCreated])]
        == EVENT_HANDLERS[LeadCreated]
    )
    assert {kind.name for kind in JOB_KINDS} <= set(registry.registered_kinds())
