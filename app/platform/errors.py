"""Domain errors and their mapping to the API's JSON error shape."""

from __future__ import annotations

from http import HTTPStatus

import redis
import sqlalchemy as sa
from flask import jsonify
from werkzeug.exceptions import HTTPException

from app.platform.db.engine import is_unavailable

# How long a client is asked to wait when the database cannot be used: a failover or a restart
# usually takes seconds, and the pool connects anew on the next request.
DATABASE_RETRY_AFTER_SECONDS = 5


# The machine-readable `code` of every error body, and what it means: a client branches on the
# code, never on the message (which is for people and may be reworded). The OpenAPI document lists
# these as the `code` enum of the Error schema; docs/api-contract.md explains them.
ERROR_CODES: dict[str, str] = {
    # Any operation, by HTTP status.
    "bad_request": "the request cannot be read (malformed JSON, an unknown token)",
    "unauthorized": "missing, invalid or expired credentials, or a bad signature",
    "forbidden": "the caller lacks the permission the operation needs",
    "not_found": "no such record in the caller's clinic (another clinic's is not found either)",
    "method_not_allowed": "the path does not take this method",
    "not_acceptable": "no answer in a media type the Accept header allows",
    "conflict": "the resource's state refuses the change",
    "gone": "a one-time link that was used, expired, or whose user is disabled",
    "stale_etag": "If-Match names an ETag the resource no longer has: read it again",
    "body_too_large": "the body is larger than the operation takes",
    "uri_too_long": "the request line (path and query string) is too long",
    "unsupported_media_type": "the body's media type is not one the operation reads",
    "validation_error": "a field is invalid; `errors` names it",
    "rate_limited": "too many requests: wait Retry-After seconds",
    "headers_too_large": "a request header, or all of them, are too large",
    "internal_error": "an unexpected failure on the engine's side",
    "unavailable": "a dependency (database, Redis) is briefly unreachable: retry after Retry-After",
    # Conflicts a client can act on.
    "lead_converted": "the lead is converted: it is locked against changes",
    "lead_closed": "the lead is converted or lost: it takes no new work",
    "do_not_contact": "the lead is marked do not contact",
    "opted_out_by_person": "the person opted out themselves (a texted STOP, an unsubscribe, a complaint)",
    "contact_policy": "the contact policy holds the message back (opt-out, no address, caps)",
    "already_enrolled": "the lead is in this sequence, or another active one, already",
    "sequence_inactive": "the sequence is inactive: activate it first",
    "entry_conditions_not_met": "the lead does not meet the sequence's entry conditions",
    "enrollment_ended": "the enrollment has ended already",
    "task_closed": "the task is completed or cancelled already",
    "task_not_claimed": "the caller does not hold the task's claim",
    "name_taken": "the name (or slug, or email) is taken in the clinic",
    "clinic_required": "the email and password open accounts in several clinics: log in with `clinic`",
    "second_factor_required": "the account has a second factor: log in with its `code` as well",
    "second_factor_enrollment_required": "the clinic requires a second factor of its admins: enrol one",
    "possible_duplicates": "reject_duplicates was asked and open leads match (listed in `errors`)",
    "invalid_state": "the record's state does not allow it (a job, bulk job, message or delivery)",
    "invalid_transition": "the lead cannot move from its stage to that one",
    "confirm_may_duplicate": "the message may have reached the lead: retry with confirm_may_duplicate",
    "limit_reached": "the clinic has the most it may have of this already",
    "pipeline_not_configured": "the clinic's pipeline lacks what the operation needs",
    "already_linked": "the conversation is a lead's already: link or capture only an unknown sender's",
    "slot_taken": "the provider holds that time already: `errors` names the clash and the nearest free slots",
    "idempotency_in_progress": "a request with this Idempotency-Key is still running: retry later",
    "merge_into_itself": "a lead cannot be merged into itself",
    "already_merged": "the lead was merged into another already: work on that one",
    "media_unavailable": "the provider did not give the message's media (gone, too large, not its host)",
}

# The code of an error that names none of its own, by HTTP status.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    412: "stale_etag",
    413: "body_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    503: "unavailable",
}


def code_for_status(status: int) -> str:
    """The default `code` of an HTTP error status (a 4xx unnamed here is a bad request)."""
    return STATUS_CODES.get(status) or ("bad_request" if status < 500 else "internal_error")


class DomainError(Exception):
    """A use case refused; `status` is the HTTP status the API answers with, `code` the machine-
    readable reason (one of ERROR_CODES; by default the status')."""

    status = 400
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        errors: dict | None = None,
        headers: dict | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}
        if code is not None:
            self.code = code
        if self.code is None:
            self.code = code_for_status(self.status)


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

    code = "invalid_transition"


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


def error_body(status: int, message: str | None = None, errors: dict | None = None, *, code=None) -> dict:
    """The one JSON shape of every error: `code` (ERROR_CODES), `status` (the HTTP reason phrase),
    `message` (for people) and, where fields are at fault, `errors`."""
    phrase = HTTPStatus(status).phrase
    body = {"code": code or code_for_status(status), "status": phrase, "message": message or phrase}
    if errors:
        body["errors"] = errors
    return body


def error_response(
    status: int, message: str | None = None, errors: dict | None = None, headers=None, *, code=None
):
    response = jsonify(error_body(status, message, errors, code=code))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_domain_error(error: DomainError):
    return error_response(error.status, error.message, error.errors, error.headers, code=error.code)


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
