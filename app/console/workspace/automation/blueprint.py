"""The one blueprint of the rules and sequences pages (its routes in rule_pages.py, sequence_pages.py)."""

from __future__ import annotations

from flask import Blueprint

blp = Blueprint("automation", __name__)
