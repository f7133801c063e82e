"""One log format for web, worker and beat: JSON lines carrying the ids of what is being done.

Every line names, where known, the request (`request_id`), the ledger job (`job_id`, `job_kind`),
the clinic (`clinic_id`) and the lead (`lead_id`): ids only, never PHI (no names, emails, phones or
notes; request lines name the URL rule, not the path or its query string). The ids live in a
context variable: a request or a job opens a `scope`, code inside it `bind`s what it learns, and a
filter on the handler copies them onto each record.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from pythonjsonlogger.json import JsonFormatter

FIELDS = ("request_id", "job_id", "job_kind", "clinic_id", "lead_id")

_CONTEXT: ContextVar[dict] = ContextVar("followup_log_context", default={})  # noqa: B039 - never mutated


def open_scope(**fields) -> Token:
    """Start a fresh context (a request, a job run) holding `fields`; `close_scope(token)` ends it."""
    return _CONTEXT.set({k: v for k, v in fields.items() if v is not None})


def close_scope(token: Token) -> None:
    _CONTEXT.reset(token)


@contextmanager
def scope(**fields) -> Iterator[None]:
    token = open_scope(**fields)
    try:
        yield
    finally:
        close_scope(token)


def bind(**fields) -> None:
    """Add ids to the current scope (a new dict: a scope's caller keeps its own)."""
    _CONTEXT.set({**_CONTEXT.get(), **{k: v for k, v in fields.items() if v is not None}})


def current() -> dict:
    return dict(_CONTEXT.get())


class ContextFilter(logging.Filter):
    """Copies the scope's ids onto each record (a record's own `extra` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def formatter() -> logging.Formatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(level: int | str | None = None, stream=None) -> logging.Handler:
    """Make the root logger write JSON lines to `stream` (stderr) from `level` (LOG_LEVEL, else INFO)
    up; idempotent per process."""
    level = level or os.environ.get("LOG_LEVEL") or logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_followup_json", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler._followup_json = True
    handler.setFormatter(formatter())
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings as JSON lines too, not raw text on stderr
    # An exception nothing caught (a process's main thread, or any thread) as one JSON line too, not
    # Python's raw traceback: a log shipper reading JSON lines would drop or split those.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    return handler


def _log_uncaught(exc_type, exc, traceback) -> None:
    uncaught = (exc_type, exc, traceback)
    logging.getLogger("uncaught").critical("uncaught %s", exc_type.__name__, exc_info=uncaught)


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:  # a thread's sys.exit() is not an error (threading's own rule)
        return
    thread = args.thread.name if args.thread else "?"
    logging.getLogger("uncaught").critical(
        "uncaught %s in thread %s",
        args.exc_type.__name__,
        thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
