"""Who is using the console: the session cookie's user, read again on every request (a disabled user,
a changed role or password counts at once), and the permission each page declares."""

from __future__ import annotations

from flask import current_app, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from app.domains.auth import service as auth
from app.domains.auth import sessions
from app.platform import clock, phi_policy
from app.platform.app_db import get_db
from app.platform.errors import DomainError, Forbidden
from app.platform.roles import Actor

csrf = CSRFProtect()

_USER, _VERSION, _SESSION = "user_id", "token_version", "session_id"


def page(permission: str):
    """Declare the permission a console page needs; `before_request` checks it (fail closed)."""

    def decorate(func):
        func._console_permission = str(permission)
        return func

    return decorate


def open_page(reason: str):
    """Declare a console page anyone may open (the login form), and why."""

    def decorate(func):
        func._console_public = reason
        return func

    return decorate


def log_in(credentials: auth.Credentials) -> None:
    """Check the credentials as the API's login does (same throttle) and start a fresh session."""
    db = get_db()
    with db.unit_of_work() as work:
        user = auth.check_credentials(
            session=work,
            redis=current_app.extensions["followup.redis"],
            settings=db.settings,
            credentials=credentials,
            client_address=request.remote_addr or "unknown",
        )
        user_id, version = user.id, user.token_version
        session_id = sessions.start_browser_session(
            session=work, user=user, settings=db.settings, now=clock.now()
        )
    session.clear()  # a new session on login: nothing of a session fixed before it survives
    session.permanent = True
    session[_USER], session[_VERSION], session[_SESSION] = user_id, version, session_id


def log_out() -> None:
    """End the session on the server (a copy of the cookie stops working), then in the browser."""
    if _SESSION in session:
        with get_db().unit_of_work() as work:
            sessions.end_browser_session(session=work, session_id=str(session[_SESSION]), now=clock.now())
    session.clear()


def _session_actor() -> Actor | None:
    if _USER not in session:
        return None
    try:
        user_id = int(session[_USER])
        with get_db().unit_of_work() as work:
            live = sessions.browser_session_is_live(
                session=work, session_id=str(session.get(_SESSION)), user_id=user_id, now=clock.now()
            )
        if not live:
            session.clear()  # logged out (maybe elsewhere, with a copy of this cookie), or too old
            return None
        return auth.user_actor(db=get_db(), user_id=user_id, token_version=int(session[_VERSION]))
    except (DomainError, ValueError, TypeError):
        session.clear()  # disabled, or its password or role changed since: log in again
        return None


def current_actor() -> Actor:
    return g.actor


def check_access():
    """before_request of the console: CSRF on every state change, then the session and the page's
    declared permission. A page that declares nothing is refused."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or request.endpoint == "console.static":
        return None
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if getattr(view, "_console_public", None):
        return None
    permission = getattr(view, "_console_permission", None)
    if permission is None:
        raise Forbidden(f"console page {request.endpoint} declares no permission")
    actor = _session_actor()
    if actor is None:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    g.actor = actor
    phi_policy.bind(actor)  # what this page dumps, it dumps for this reader, as the API does
    if not actor.can(permission):
        raise Forbidden(f"this page needs the permission {permission}")
    return None
