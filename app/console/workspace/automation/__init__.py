"""Rules and sequences for admins (issue 64 item 7): the clinic's follow-up rules with their
versions, a condition builder that checks a rule as it is built, tries it on a lead and replays it
over the last 30 days before saving it; and the sequences' steps in order. One blueprint, its pages
in rule_pages.py and sequence_pages.py."""

from __future__ import annotations

from app.console.workspace.automation import rule_pages, sequence_pages  # noqa: F401  (their routes)
from app.console.workspace.automation.blueprint import blp

__all__ = ["blp"]
