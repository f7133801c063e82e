"""gunicorn's settings for this app (`gunicorn -c python:app.telemetry.gunicorn_config ...`).

- gunicorn's own lines in the same JSON as the app's; its access log off: it writes the raw path
  and query string (`/api/leads?q=<a name>`), PHI. The app writes one JSON line per request
  instead, naming the URL rule (app/telemetry/web.py).
- A worker that exits is marked dead for prometheus-client's multiprocess mode.
- A worker opens a database connection before it serves, so its first request does not wait for one.
"""

from app.telemetry import metrics

_JSON_STDERR = {
    "class": "logging.StreamHandler",
    "formatter": "json",
    "filters": ["context"],
    "stream": "ext://sys.stderr",
}

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "app.telemetry.logs.formatter"}},
    "filters": {"context": {"()": "app.telemetry.logs.ContextFilter"}},
    "handlers": {"json": _JSON_STDERR},
    # The app adds its own root handler (app/telemetry/logs.py); gunicorn's loggers have their own.
    "root": {"level": "INFO", "handlers": []},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
    },
}


def child_exit(server, worker) -> None:
    metrics.mark_process_dead(worker.pid)


def post_worker_init(worker) -> None:
    database = getattr(worker.wsgi, "extensions", {}).get("followup.db")
    if database is not None:
        database.connect_ahead()
