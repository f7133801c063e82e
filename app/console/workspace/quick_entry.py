"""Workspace page (being built by h3)."""

from __future__ import annotations

from flask import Blueprint

blp = Blueprint("quick_entry", __name__)
