"""The one blueprint of the rules and sequences pages (its routes in rule_pages.py, sequence_pages.py),
and the rule language's words for every console page (a lead's why-trail says its rules' conditions,
actions and events with them: app/console/wording_rules.py)."""

from __future__ import annotations

from flask import Blueprint

from app.console import wording_rules

blp = Blueprint("automation", __name__)
for _name in ("trail_sentence", "action_label", "trigger_label"):
    blp.add_app_template_global(getattr(wording_rules, _name), f"rule_{_name}")
