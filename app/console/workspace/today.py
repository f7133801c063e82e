"""Workspace page (being built by h3)."""

from __future__ import annotations

from flask import Blueprint

blp = Blueprint("today", __name__)
