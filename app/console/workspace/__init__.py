"""The staff workspace (issue 64): the pages people work leads in, each a blueprint of its own module
nested under the console's, so the console's `check_access` (session, CSRF, the page's declared
permission) and error pages apply to them unchanged."""

from __future__ import annotations

from flask import Blueprint


def register(console: Blueprint) -> None:
    """Nest the workspace's blueprints under the console's, once: a blueprint is set up once per
    process and then registered on every app made (the tests make many)."""
    if getattr(console, "_workspace_registered", False):
        return
    console._workspace_registered = True
    from app.console.workspace import board, team

    console.register_blueprint(board.blp)
    console.register_blueprint(team.blp)
