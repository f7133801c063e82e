"""Domain errors and their mapping to the API's JSON error shape."""

from __future__ import annotations

from http import HTTPStatus

import redis
import sqlalchemy as sa
from flask import jsonify
from werkzeug.exceptions import HTTPException

from app.db.engine import is_unavailable

# How long a client is asked to wait when the database cannot be used: a failover or a restart
# usually takes seconds, and the pool connects anew on the next request.
DATABASE_RETRY_AFTER_SECONDS = 5


class DomainError(Exception):
    """A use case refused; `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str, *, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}


class BadRequest(DomainError):
    status = 400


class Unauthorized(DomainError):
    status = 401


class Forbidden(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class InvalidTransition(Conflict):
    """A state change that the current state does not allow."""


class Gone(DomainError):
    """Something that existed and can no longer be used (a spent or expired one-time link)."""

    status = 410


class PreconditionFailed(DomainError):
    status = 412


class ValidationFailed(DomainError):
    """Input that parsed but breaks a rule; `errors` names the fields."""

    status = 422

    def __init__(self, field: str | dict, message: str | None = None):
        errors = field if isinstance(field, dict) else {field: [message]}
        text = message or "; ".join(f"{k}: {v}" for k, v in errors.items())
        super().__init__(text, errors={"json": errors})


class TooManyRequests(DomainError):
    status = 429


def error_body(status: int, message: str | None = None, errors: dict | None = None) -> dict:
    phrase = HTTPStatus(status).phrase
    body = {"code": status, "status": phrase, "message": message or phrase}
    if errors:
        body["errors"] = errors
    return body


def error_response(status: int, message: str | None = None, errors: dict | None = None, headers=None):
    response = jsonify(error_body(status, message, errors))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_domain_error(error: DomainError):
    return error_response(error.status, error.message, error.errors, error.headers)


def handle_http_exception(error: HTTPException):
    """Every HTTP error answers JSON; webargs' validation messages land under `errors`."""
    data = getattr(error, "data", None) or {}
    errors = data.get("messages")
    message = error.description if isinstance(error.description, str) else None
    if errors and error.code == 422:
        message = "Validation failed: " + ", ".join(_field_names(errors))
    headers = dict(data.get("headers") or {})
    valid_methods = getattr(error, "valid_methods", None)
    if error.code == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    return error_response(error.code or 500, message, errors, headers)


# Seconds a client is told to wait when Redis cannot be reached: about a failover's length.
REDIS_RETRY_AFTER_SECONDS = 5


def handle_redis_unreachable(error: redis.RedisError):
    """Redis out of reach where a request truly needs it (login throttling, signed-request replay
    stores): 503 with Retry-After, not 500. Failing open there would let password guessing go
    unthrottled and a captured signed request be replayed; the caller retries soon instead."""
    from flask import current_app

    current_app.logger.warning("Redis unreachable: %s", error)
    return error_response(
        503,
        "A dependency is briefly unavailable; try again",
        headers={"Retry-After": str(REDIS_RETRY_AFTER_SECONDS)},
    )


def handle_unexpected(error: Exception):
    from flask import current_app

    current_app.logger.exception("unhandled error")
    return error_response(500, "Internal server error")


def handle_database_error(error: sa.exc.DBAPIError):
    """The database unreachable, or it dropped the connection: a 503 to try again, not a 500."""
    if not is_unavailable(error):
        return handle_unexpected(error)
    from flask import current_app

    current_app.logger.warning("database unavailable: %s", type(error.orig).__name__)
    return error_response(
        503,
        "The database is unavailable; try again shortly",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
    )


def _field_names(errors: dict) -> list[str]:
    names: list[str] = []
    for location, fields in errors.items():
        if isinstance(fields, dict):
            names.extend(str(name) for name in fields)
        else:
            names.append(str(location))
    return names


def register_error_handlers(app) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(redis.ConnectionError, handle_redis_unreachable)
    app.register_error_handler(redis.TimeoutError, handle_redis_unreachable)
    app.register_error_handler(sa.exc.DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
