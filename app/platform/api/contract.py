"""What every operation of the OpenAPI document says beyond its view's own decorators, added in one
place as the document is built: its operationId, the shared error answers (each with the Error
body), and the headers it reads or writes.

The headers follow the code: `Idempotency-Key` (and `Idempotent-Replayed` on a replay) where the
view is wrapped by app/platform/idempotency/web.py's `idempotent`; `If-Match` where it calls
`check_if_match`; `ETag` where it answers `with_etag`; `RateLimit-*` on every answer of a
rate-limited path; `Retry-After` on its 429 and 503. `X-Pagination` is flask-smorest's, on each
paginated list.
"""

from __future__ import annotations

import inspect
from http import HTTPStatus

from marshmallow import Schema, fields, validate

from app.platform.api.operation_ids import operation_id
from app.platform.errors import ERROR_CODES
from app.platform.ratelimit import EXEMPT_PATHS, RATE_LIMIT_HEADERS

UNLIMITED_PATHS = EXEMPT_PATHS  # no rate limit, so no RateLimit-* headers
# Paths that touch no database or Redis of the engine's before they answer (or say so themselves).
NO_SHARED_UNAVAILABLE = ("/healthz", "/readyz", "/metrics")
IDEMPOTENCY_MARK = "_honours_idempotency_key"  # set on a view by app/platform/idempotency/web.py
MAX_IDEMPOTENCY_KEY_LENGTH = 200  # app/platform/idempotency/service.py MAX_KEY_LENGTH (a test compares)


class ErrorSchema(Schema):
    """The body of every error answer (app/platform/errors.py `error_body`)."""

    code = fields.String(
        required=True,
        validate=validate.OneOf(sorted(ERROR_CODES)),
        metadata={"description": "Why, for a program to branch on (docs/api-contract.md lists them)"},
    )
    status = fields.String(required=True, metadata={"description": "The HTTP reason phrase"})
    message = fields.String(required=True, metadata={"description": "Why, for a person"})
    errors = fields.Dict(metadata={"description": "The fields at fault, by location (json, query, headers)"})


def _integer_header(description: str) -> dict:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


HEADERS = {
    "RateLimit-Limit": _integer_header("Requests the caller may make in the current window"),
    "RateLimit-Remaining": _integer_header("Requests left in the current window"),
    "RateLimit-Reset": _integer_header("Seconds until the window resets"),
    "Retry-After": _integer_header("Seconds to wait before trying again"),
    "ETag": {
        "description": "The resource's version: send it back in If-Match to update it safely",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "Present on an answer replayed for a repeated Idempotency-Key: nothing was done again",
        "schema": {"type": "string", "enum": ["true"]},
    },
}
# Every response header the document names: these and flask-smorest's X-Pagination on paged lists.
RESPONSE_HEADERS = (*HEADERS, "X-Pagination")
PARAMETERS = {
    "Idempotency-Key": {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "Any unique string: the same request sent again with it within 24 hours "
        "is answered as the first time, and done once",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
    },
    "If-Match": {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "The ETag read: the change is refused (412, stale_etag) if the resource changed since",
        "schema": {"type": "string"},
    },
}
COMPONENTS = {
    "headers": HEADERS,
    "parameters": {name.replace("-", ""): spec for name, spec in PARAMETERS.items()},
}


def _header_ref(name: str) -> dict:
    return {"$ref": f"#/components/headers/{name}"}


def _parameter_ref(name: str) -> str:
    return name.replace("-", "")  # apispec reads a parameter given by name as a component's $ref


def error_answer(description: str, *, retry_after: bool = False) -> dict:
    """An error answer of a rate-limited path: the Error body and the RateLimit-* headers."""
    names = [*RATE_LIMIT_HEADERS, *(["Retry-After"] if retry_after else [])]
    return {
        "description": description,
        "content": {"application/json": {"schema": ErrorSchema}},
        "headers": {name: _header_ref(name) for name in names},
    }


UNAVAILABLE = "The database or Redis is briefly unreachable: retry after Retry-After seconds"
# The shared answers (components/responses, by HTTPStatus name), each once in the document.
SHARED_ANSWERS = {
    status.name: error_answer(
        UNAVAILABLE if status == 503 else status.phrase, retry_after=status in (429, 503)
    )
    for status in HTTPStatus
    if status >= 400
}


def complete_operation(operation: dict, *, method: str, path: str, shared: dict[str, str], view) -> None:
    """Give `operation` (flask-smorest's, before apispec resolves it) its operationId, its
    `shared` error answers (status -> HTTPStatus name, a components/responses entry), the Error
    body on each of its own error answers, and the headers it reads and writes."""
    operation["operationId"] = operation_id(method, path)
    operation.setdefault("security", [])  # a public operation says so: no credentials
    responses = _by_status(operation.get("responses", {}))
    for status, name in shared.items():
        responses.setdefault(status, name)
    if not path.startswith(NO_SHARED_UNAVAILABLE):
        responses.setdefault("503", HTTPStatus.SERVICE_UNAVAILABLE.name)
    reads, writes = _headers_of(view)
    if "Idempotency-Key" in reads:
        # A repeated key still running is a 409; one reused for another request is a 422.
        responses.setdefault("409", HTTPStatus.CONFLICT.name)
        responses.setdefault("422", HTTPStatus.UNPROCESSABLE_ENTITY.name)
    if "If-Match" in reads:
        responses.setdefault("412", HTTPStatus.PRECONDITION_FAILED.name)
    limited = not path.startswith(UNLIMITED_PATHS)
    for status, answer in responses.items():
        if isinstance(answer, str):
            if limited:
                continue  # a shared answer: complete in components/responses
            answer = responses[status] = {"description": HTTPStatus[answer].phrase}
        code = int(status)
        if code >= 400 and "content" not in answer:
            answer["content"] = {"application/json": {"schema": ErrorSchema}}
        headers = answer.setdefault("headers", {})
        if limited:
            headers.update({name: _header_ref(name) for name in RATE_LIMIT_HEADERS})
        if limited and code in (429, 503):
            headers["Retry-After"] = _header_ref("Retry-After")
        if 200 <= code < 300:
            headers.update({name: _header_ref(name) for name in sorted(writes)})
        if not headers:
            del answer["headers"]
    operation["responses"] = responses
    if reads:
        parameters = operation.setdefault("parameters", [])
        parameters.extend(_parameter_ref(name) for name in sorted(reads))


def _by_status(responses: dict) -> dict:
    """The answers keyed by status text: flask-smorest keys some by int, others by text; a view's
    own answer (a dict) wins over a shared one (its HTTPStatus name)."""
    merged: dict = {}
    for status, answer in responses.items():
        key = str(int(status))
        if key not in merged or isinstance(merged[key], str):
            merged[key] = answer
    return dict(sorted(merged.items()))


def _headers_of(view) -> tuple[set[str], set[str]]:
    """The headers a view method reads and writes beyond the shared ones, from what it calls."""
    if view is None:
        return set(), set()
    reads: set[str] = set()
    writes: set[str] = set()
    func = view
    while func is not None:
        if getattr(func, IDEMPOTENCY_MARK, False):
            reads.add("Idempotency-Key")
            writes.add("Idempotent-Replayed")
        func = getattr(func, "__wrapped__", None)
    try:
        source = inspect.getsource(inspect.unwrap(view))
    except (OSError, TypeError):
        source = ""
    if "check_if_match(" in source:
        reads.add("If-Match")
    if "with_etag(" in source:
        writes.add("ETag")
    return reads, writes
