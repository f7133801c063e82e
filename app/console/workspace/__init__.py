"""The staff workspace: the pages coordinators and the front desk work in (Today, quick entry, the
board, the lead page, ...), each page module (MODULES below; the rules and sequences pages share one)
its own blueprint nested under the console's, so the console's before_request (session, CSRF, the
page's declared permission) and error pages apply to it as well."""

from __future__ import annotations

from importlib import import_module

# One line per page module (each defines `blp`): the console nests them in this order.
MODULES = (
    "app.console.workspace.today",
    "app.console.workspace.schedule",
    "app.console.workspace.quick_entry",
    "app.console.workspace.board",
    "app.console.workspace.team",
    "app.console.workspace.lead_page",
    "app.console.workspace.reports",
    "app.console.workspace.inbox.pages",
    "app.console.workspace.automation",
    "app.console.workspace.search",
    "app.console.workspace.cadence",
    "app.console.imports.pages",  # its own package: the import from a spreadsheet
    "app.console.settings",
)


def nest_workspace(console) -> None:
    """Nest each workspace blueprint under the console's. The console's blueprint is a module global
    and Flask refuses a nested one after its first registration: a second app (tests) finds them
    nested already."""
    nested = {child.name for child, _ in console._blueprints}
    for name in MODULES:
        child = import_module(name).blp
        if child.name not in nested:
            console.register_blueprint(child)
