"""gunicorn's settings for this app (`gunicorn -c python:app.platform.telemetry.gunicorn_config ...`).

- gunicorn's own lines in the same JSON as the app's; its access log off: it writes the raw path
  and query string (`/api/leads?q=<a name>`), PHI. The app writes one JSON line per request
  instead, naming the URL rule (app/platform/telemetry/web.py).
- A worker that exits is marked dead for prometheus-client's multiprocess mode.
- A worker opens a database and a broker connection before it serves, so its first request does not
  wait for them, and then freezes what it has loaded (`freeze_loaded_objects`).
- A request line up to gunicorn's most (a long filter list) reaches the app, which refuses one over
  its own limit (app/platform/api `refuse_oversized_request_line`); gunicorn's refusals of a longer line or
  of too large headers answer the API's JSON error (app/platform/telemetry/gunicorn_errors.py).
"""

import gc

from app.platform.telemetry import gunicorn_errors, metrics

# gunicorn's largest request line (its default is 4094); the app's own limit is below it.
limit_request_line = 8190

# No control socket (gunicorn 25.1+): nothing here uses it, and every web on a host would share its
# one default path ($HOME/.gunicorn/gunicorn.ctl). An older gunicorn ignores the name.
control_socket_disable = True

_JSON_STDERR = {
    "class": "logging.StreamHandler",
    "formatter": "json",
    "filters": ["context"],
    "stream": "ext://sys.stderr",
}

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.platform.telemetry.logs.formatter"}},
    "filters": {"context": {"()": "app.platform.telemetry.logs.ContextFilter"}},
    "handlers": {"json": _JSON_STDERR},
    # The app adds its own root handler (app/platform/telemetry/logs.py); gunicorn's loggers have their own.
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def child_exit(server, worker) -> None:
    metrics.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    gunicorn_errors.install(worker)
    extensions = getattr(worker.wsgi, "extensions", {})
    if "followup.db" in extensions:
        extensions["followup.db"].connect_ahead()
        extensions["followup.dispatcher"].connect_ahead()
    freeze_loaded_objects()


def freeze_loaded_objects() -> None:
    """Move everything the worker has loaded (the app, its modules, the ORM's mappers) out of the
    garbage collector's reach: it lives as long as the process. A page that makes tens of thousands
    of objects (the board's 500 cards) sets off full collections, and each walked the whole loaded
    app: the board's p99 at 100,000 leads was 262-331 ms with it walked, 81-121 ms frozen
    (docs/performance-history.md, "Staff workspace"). Collected first, so no garbage is frozen with it."""
    gc.collect()
    gc.freeze()
