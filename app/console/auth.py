"""Who is using the console: the session cookie's user, read again on every request (a disabled user,
a changed role or password counts at once), and the permission each page declares."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_wtf.csrf import CSRFProtect

from app.domains.auth import onboarding, sessions
from app.domains.auth import service as auth
from app.domains.auth.login import credentials as logins
from app.domains.auth.login import second_factor
from app.platform import clock, phi_policy
from app.platform.app_db import get_db
from app.platform.errors import DomainError, Forbidden, Unauthorized
from app.platform.roles import Actor

csrf = CSRFProtect()

_USER, _VERSION, _SESSION = "user_id", "token_version", "session_id"
# Who passed the password and until when the code step waits for them: [user id, token version, epoch].
_PASSED = "second_factor_pending"
SECOND_STEP_TIME = timedelta(minutes=5)


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


def set_password(*, token: str, password: str) -> bool:
    """A setup link's password (a new clinic's admin, an invited user, a reset), as the API's password
    setup sets it (the token spent once, the password policy the same); then the person is logged in
    as the login form would (a second factor still asks its code). True when signed in."""
    with get_db().unit_of_work() as work:
        user = onboarding.set_password_with_token(
            session=work, token=token, password=password, now=clock.now()
        )
        credentials = logins.Credentials(user.email, password, user.clinic_id)
    return log_in(credentials)


def log_in(credentials: logins.Credentials) -> bool:
    """Check the password as the API's login does (same throttle); then start a fresh session, or,
    for a user with a second factor, remember who passed (in the signed cookie, for a few minutes)
    and let `log_in_with_code` ask the code. True when signed in."""
    db = get_db()
    redis, now = current_app.extensions["followup.redis"], clock.now()
    with db.unit_of_work() as work:
        user = logins.check_password(
            session=work,
            redis=redis,
            settings=db.settings,
            credentials=credentials,
            client_address=_address(),
        )
        if second_factor.enrolled(work, user.id) is not None:
            passed = [user.id, user.token_version, (now + SECOND_STEP_TIME).timestamp()]
        else:  # no code to ask; unless the clinic requires one of this admin (403: enrol first)
            second_factor.asks_code(session=work, user=user, code=None)
            _start_session(work, user, now)
            return True
    session.clear()
    session[_PASSED] = passed
    return False


def awaiting_code() -> bool:
    """Whether someone passed the password a moment ago and the code step is next."""
    passed = session.get(_PASSED)
    return bool(passed) and passed[2] > clock.now().timestamp()


def log_in_with_code(code: str) -> None:
    """The second step: the code of the user who passed the password (counted by the same throttle);
    Unauthorized when it is wrong, or when the step is too late or the user changed since."""
    if not awaiting_code():
        session.pop(_PASSED, None)
        raise Unauthorized("the code was not given in time: log in again")
    db = get_db()
    user_id, version, _ = session[_PASSED]
    with db.unit_of_work() as work:
        user = logins.check_second_step(
            session=work,
            redis=current_app.extensions["followup.redis"],
            settings=db.settings,
            passed=(int(user_id), int(version)),
            attempt=second_factor.Attempt(code=code, client_address=_address()),
            now=clock.now(),
        )
        _start_session(work, user, clock.now())


def _address() -> str:
    return request.remote_addr or "unknown"


def _start_session(work, user, now) -> None:
    user_id, version = user.id, user.token_version
    session_id = sessions.start_browser_session(session=work, user=user, settings=get_db().settings, now=now)
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
    except Forbidden as refused:  # opened before the clinic required a second factor of this admin
        log_out()
        flash(refused.message)  # the login page says why, and the login refuses until they enrol
        return None
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
