"""The Follow-up Engine's Flask application."""

from __future__ import annotations

from functools import partial

from flask import Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface, SessionInterface
from flask_cors import CORS
from werkzeug.middleware.proxy_fix import ProxyFix

from app.console import CONSOLE_PREFIX
from app.platform import page_policy
from app.platform.config import Settings


def create_app(config: Settings | dict | None = None, *, http: bool = True) -> Flask:
    """Build the app from the environment; `config` (Settings or overrides) is for tests and tools.

    `http=False`: the app of a process that serves no requests (a worker, beat): its domains, database
    and broker without the API's routes, OpenAPI document and console, which cost every worker process
    more than a second of CPU at start."""
    settings = _resolve_settings(config)
    settings.validate()

    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["SECRET_KEY"] = settings.secret_key
    app.config["JSON_SORT_KEYS"] = False
    # Flask/werkzeug refuse a body over this when it is read; refuse_oversized_body does it first.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_content_length
    app.session_interface = _NoCookieSession()
    if settings.trusted_proxy_hops > 0:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    from app.platform.telemetry import logs, tracing, web

    logs.configure()
    web.init_app(app)  # first: the request's id and log scope are there for every later hook

    from app.bootstrap import EXTENSION, bootstrap
    from app.platform.celery_config import celery_init_app
    from app.platform.db import Database
    from app.platform.db.protected import use_keys
    from app.platform.redis_clients import redis_client
    from app.platform.scheduling.dispatch import Dispatcher

    # Built once here and handed on: views and Celery tasks pass them (or the Database, which
    # carries them) to the services, which never read them from the app.
    redis, dispatcher = redis_client(settings.redis_url, settings), Dispatcher(settings, celery_init_app(app))
    _import_domains()
    # The process's one engine, built here and nowhere else (app/bootstrap.py): `inject` hands it to
    # the views that name it, the Database carries it to the ledger and to work deep in a unit.
    app.extensions[EXTENSION] = wiring = bootstrap(settings, plugins=settings.plugins)
    app.extensions["followup.redis"] = redis
    app.extensions["followup.dispatcher"] = dispatcher
    app.extensions["followup.db"] = db = Database(
        settings.database_url, settings=settings, dispatcher=dispatcher, redis=redis, wiring=wiring
    )
    use_keys(db.engine, settings.resolved_phi_key())  # the protected columns' key, for this engine
    if http:
        _register_http(app, settings)
    if tracing.start_from_env():
        tracing.instrument_app(app, app.extensions["followup.db"].engine)
    _configure_mappers()
    return app


def _register_http(app: Flask, settings: Settings) -> None:
    """What serving requests needs: CORS, the API, the security headers, the console."""
    from app.platform import access
    from app.platform.telemetry import web

    if settings.cors_origins:
        from app.platform.api.contract import RESPONSE_HEADERS

        # A browser frontend reads every response header the OpenAPI document names.
        CORS(app, origins=settings.cors_origins, expose_headers=list(RESPONSE_HEADERS))
    _register_api(app)
    app.after_request(partial(_security_headers, settings=settings))
    from app.console import init_console

    init_console(app, settings)  # its own session check (the API's is by bearer token or key)
    from app.booking_page import init_booking_page

    init_booking_page(app)  # public pages: a clinic's key or a signed link names whose
    # The lead the URL names, for every request; an API view's check_access binds the caller again
    # once it has authenticated them (the console's own check runs after this hook).
    app.before_request(web.bind_caller)
    access.refuse_undeclared(app)  # every route is registered: none may skip its access check


def _configure_mappers() -> None:
    """Settle the ORM's mappers now that every model is imported: SQLAlchemy does it on first use,
    which would be a fresh process's first request or job (a new lead's first job in a worker, and
    in each pool child again, since the parent never used the ORM)."""
    from sqlalchemy.orm import configure_mappers

    configure_mappers()


class _NoCookieSession(SessionInterface):
    """The API is stateless (bearer tokens, signed web forms): no cookie session to look for and
    verify on every request. Flask's read-only null session stands in; writing to it raises. The
    console's pages (under CONSOLE_PREFIX) have Flask's signed cookie session."""

    cookie = SecureCookieSessionInterface()

    def open_session(self, app, request):
        if _is_console(request.path):
            return self.cookie.open_session(app, request)
        return None

    def save_session(self, app, session, response):
        if _is_console(request.path):
            self.cookie.save_session(app, session, response)
        return None


# On every answer, page or API: no page of ours may be framed (clickjacking: X-Frame-Options for old
# browsers, CSP frame-ancestors for new ones), no type sniffing, no URL (a console filter, an id)
# leaked to another site's Referer. HSTS only on an https request (ProxyFix's X-Forwarded-Proto
# counts where hops are trusted): sent over plain http it would be ignored, and a local http
# setup must not be told to insist on https. The pages people open (the console's; the booking page
# sets its own, with its framers) get the strict policy of app/platform/page_policy.py, and every
# answer that may carry PHI `Cache-Control: no-store`, so no browser or proxy cache keeps a copy.
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
HSTS = "max-age=31536000; includeSubDomains"


def _security_headers(response, settings: Settings):
    if _is_console(request.path):  # its scripts may also reach the event stream's own origin
        stream = page_policy.origin_of(settings.stream_url)
        policy = page_policy.content_security_policy(connect_to=stream)
        response.headers.setdefault("Content-Security-Policy", policy)
    cache = response.headers.get("Cache-Control", "")
    if _may_hold_phi(request.path, response.mimetype) and "no-store" not in cache:
        response.headers["Cache-Control"] = "no-store"
    # A page that names its own framers (the booking page: the clinic's website origins) is framed by
    # those: X-Frame-Options cannot name several origins, and DENY would override it in old browsers.
    policy = response.headers.get("Content-Security-Policy", "")
    own_framers = "frame-ancestors" in policy and "frame-ancestors 'none'" not in policy
    for name, value in SECURITY_HEADERS.items():
        if name == "X-Frame-Options" and own_framers:
            continue
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def _may_hold_phi(path: str, mimetype: str | None) -> bool:
    """Whether an answer is kept by no cache (browser, proxy): every API answer but the OpenAPI
    document and its docs, and every HTML page (the console's, the booking page's)."""
    if path == "/api/openapi.json" or path.startswith("/api/docs"):
        return False
    return path.startswith("/api/") or mimetype == "text/html"


def _is_console(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


def _resolve_settings(config: Settings | dict | None) -> Settings:
    if isinstance(config, Settings):
        return config
    settings = Settings.from_env()
    for key, value in (config or {}).items():
        if not hasattr(settings, key):
            raise KeyError(f"unknown setting {key}")
        setattr(settings, key, value)
    return settings


def _register_api(app: Flask) -> None:
    from app.platform import access, phi_policy
    from app.platform.api import init_api, refuse_oversized_body, refuse_oversized_request_line
    from app.platform.errors import register_error_handlers

    api = init_api(app)
    from app.domains import blueprints

    for blueprint in blueprints():
        api.register_blueprint(blueprint)
    # After flask-smorest's own handler, so every error answers the one JSON shape.
    register_error_handlers(app)
    app.before_request(refuse_oversized_request_line)  # first: before authentication reads anything
    app.before_request(refuse_oversized_body)
    access.install_check(app, check_access)  # what each view's @requires / @public runs first
    app.teardown_request(lambda _exc: phi_policy.bind(None))  # the thread's next request starts unbound
    from app.platform.ratelimit import init_rate_limits

    app.extensions["followup.limiter"] = init_rate_limits(app)  # checked by check_access, per caller


def check_access(declared) -> None:
    """What every API view's access declaration (app/platform/access.py) runs before the view: the
    auth domain authenticates and authorizes (401/403), the caller's clinic goes into the request's
    log scope, then the rate limit counts the request against the caller it now knows (429)."""
    from app.domains.auth.permissions import check_declared
    from app.platform.telemetry import web

    check_declared(declared)
    web.bind_caller()
    limiter = current_app.extensions["followup.limiter"]
    if limiter is not None:  # None: limits switched off (FOLLOWUP_RATE_LIMIT_PER_MINUTE=0)
        limiter.check()


def _import_domains() -> None:
    """Import every domain's models (their tables and mappers). Importing registers no handler:
    the handler map runs once `bootstrap` has built the process's Wiring from it."""
    import app.domains  # noqa: F401
