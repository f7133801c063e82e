"""The console: server-rendered pages for a clinic's staff — the workspace coordinators and the front
desk work in (workspace/: Today, the board, a lead's page, the inbox, ...) and the admins' pages
(failures and retries, health, bulk jobs, analytics) — over the same services, permissions and PHI
rule as the API, with a session cookie and CSRF tokens."""

from __future__ import annotations

from datetime import timedelta

CONSOLE_PREFIX = "/console"
SESSION_LIFETIME = timedelta(hours=12)


def init_console(app, settings) -> None:
    """The console's blueprint, its cookie settings and CSRF protection (its forms only: the JSON
    API authenticates by header, which a cross-site form cannot send)."""
    from app.console.auth import csrf
    from app.console.views import blp
    from app.console.workspace import nest_workspace

    app.config.update(
        SESSION_COOKIE_NAME="followup_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.env == "production",
        SESSION_COOKIE_PATH=CONSOLE_PREFIX,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked in the console's before_request only
        WTF_CSRF_TIME_LIMIT=int(SESSION_LIFETIME.total_seconds()),
    )
    csrf.init_app(app)
    nest_workspace(blp)
    app.register_blueprint(blp, url_prefix=CONSOLE_PREFIX)
