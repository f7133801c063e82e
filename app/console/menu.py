"""Where each person lands and what the header's menu offers them: plain decisions over an `Actor`
(no Flask, no database), so a role's day and its menu are tested without a page. The words are the
wording table's (wording.MENU)."""

from __future__ import annotations

from dataclasses import dataclass

from app.console import wording
from app.platform.roles import Actor, Permission


@dataclass(frozen=True)
class Entry:
    key: str  # the wording table's key, and the link's id in the page (`nav-<key>`)
    endpoint: str
    # Who is offered the page: at least the permission the page itself declares, sometimes more
    # (a page a role may open but has no use for stays out of its menu).
    shown_to: str

    @property
    def label(self) -> str:
        return wording.MENU[self.key]


# In the order of a working day: the day and its consultations, entering and answering families, then
# the clinic's running.
MENU = (
    Entry("today", "console.today.today", Permission.READ),
    Entry("schedule", "console.schedule.show", Permission.READ),
    Entry("new_lead", "console.quick_entry.new_lead", Permission.CREATE),
    Entry("inbox", "console.inbox.show", Permission.READ),
    Entry("board", "console.board.show", Permission.READ),
    Entry("import", "console.imports.upload_form", Permission.CREATE),
    Entry("team", "console.team.show", Permission.ASSIGN),
    # Bulk changes are made by those who may change leads; the front desk's imports, the only bulk
    # job it starts, have their own page (Import), so it is not offered a list it cannot act on.
    Entry("bulk_jobs", "console.bulk_jobs", Permission.UPDATE),
    # Those who work leads see how their own work goes; the clinic's figures are the Reports.
    Entry("my_figures", "console.reports.mine", Permission.UPDATE),
    Entry("reports", "console.reports.show", Permission.ANALYTICS),
    Entry("analytics", "console.analytics", Permission.ANALYTICS),
    Entry("rules", "console.automation.rules_list", Permission.CONFIGURE),
    Entry("sequences", "console.automation.sequences_list", Permission.CONFIGURE),
    Entry("failures", "console.failures_page", Permission.CONFIGURE),
    Entry("health", "console.health", Permission.CONFIGURE),
    Entry("settings", "console.settings.index", Permission.CONFIGURE),
)

# Where a person's day starts: the first of these their role holds. Those who work leads (the
# coordinators, and the admins, who stand in for them) start on Today's calls and tasks; the front
# desk, who enters families as they call or walk in, on the quick entry; a role that only reads
# leads on Today; one that only reads the numbers (the doctors) on the Reports.
HOMES = (
    (Permission.UPDATE, "console.today.today"),
    (Permission.CREATE, "console.quick_entry.new_lead"),
    (Permission.READ, "console.today.today"),
    (Permission.ANALYTICS, "console.reports.show"),
)


def menu(actor: Actor) -> list[Entry]:
    """The header's entries this person is offered."""
    return [entry for entry in MENU if actor.can(entry.shown_to)]


def home(actor: Actor) -> str | None:
    """The endpoint of the page this person's day starts on; None when no console page is theirs."""
    for permission, endpoint in HOMES:
        if actor.can(permission):
            return endpoint
    offered = menu(actor)
    return offered[0].endpoint if offered else None
