"""The staff workspace: the pages people who call the families work in (issue 64), each in its own
module with its own blueprint, nested under the console's: the console's before_request (session,
CSRF, the page's declared permission) and error pages apply to them as to every console page."""

from __future__ import annotations


def register(console_blp) -> None:
    """Nest the workspace's blueprints under the console's, once per process: the console's
    blueprint is a module global that every app made in this process registers again."""
    if getattr(console_blp, "_workspace_nested", False):
        return
    console_blp._workspace_nested = True
    from app.console.workspace import lead_page

    console_blp.register_blueprint(lead_page.blp)
