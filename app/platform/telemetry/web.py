"""The web tier's share: a request id, the request's log scope and JSON request line, its latency
histogram by URL rule and status."""

from __future__ import annotations

import logging
import re
import time
import uuid
from functools import partial

from flask import Flask, g, request

from app.platform.telemetry import logs, metrics

log = logging.getLogger("followup.request")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's (or a proxy's) id is kept if it is a plain token; anything else is replaced, so a
# header cannot smuggle text (or PHI) into the logs.
_GIVEN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def init_app(app: Flask) -> None:
    """Before any other hook: open the scope; `bind_caller` runs once the caller is known."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(partial(_finish, settings=app.config["SETTINGS"]))
    app.teardown_request(_end_scope)


def bind_caller() -> None:
    """The caller's clinic (once authenticated), and the lead the URL names: a before_request hook,
    and again from an API view's access check once it has authenticated the caller."""
    actor = g.get("actor")
    lead_id = (request.view_args or {}).get("lead_id")
    logs.bind(clinic_id=getattr(actor, "clinic_id", None), lead_id=lead_id)


def route() -> str | None:
    """The request's route pattern (`/api/calendar/<token>.ics`), None when no route matched: what
    logs, metrics and traces name a request by, never its raw path (which may hold a token)."""
    return request.url_rule.rule if request.url_rule is not None else None


def _start() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _GIVEN_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    g.log_scope = logs.open_scope(request_id=g.request_id)


def _finish(response, settings):
    started = g.get("request_started")
    if started is None:  # a response made before our first hook ran (another hook answered first)
        return response
    seconds = time.perf_counter() - started
    endpoint = route()
    if settings.metrics_token:  # else no one can scrape them: not kept
        metrics.observe_request(
            endpoint=endpoint, method=request.method, status=response.status_code, seconds=seconds
        )
    response.headers[REQUEST_ID_HEADER] = g.request_id
    log.info(
        "request",
        extra={
            "method": request.method,
            "endpoint": endpoint or metrics.UNMATCHED,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
    return response


def _end_scope(_error=None) -> None:
    token = g.pop("log_scope", None)
    if token is not None:
        logs.close_scope(token)
