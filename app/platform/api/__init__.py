"""The flask-smorest Api: OpenAPI document, offline Swagger UI, security schemes, shared helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import current_app, request, send_from_directory
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.spec.plugins import integerconverter2paramschema
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge, RequestURITooLarge
from werkzeug.routing import IntegerConverter, Rule

from app.platform.api import contract
from app.platform.api.contract import UNLIMITED_PATHS
from app.platform.api.requests import NOT_WHOLE, RequestSchema, StrictBoolean  # noqa: F401 (the domains' import)
from app.platform.db import MAX_ID
from app.platform.errors import PreconditionFailed
from app.platform.stream import document as stream_document


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in a route, bounded to MAX_ID: an oversized id does not match (404)."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


# Timestamps a request may carry: far enough for any real history or plan, near enough that
# converting to UTC (and a day's arithmetic) never overflows Python's datetime.
MIN_YEAR, MAX_YEAR = 1900, 2999

# The longest text any request field may carry (a note, a template body); each field's own
# `validate.Length` says less where its column is narrower (tests/test_guarded_schemas.py checks).
MAX_TEXT_LENGTH = 20_000


class UTCDateTime(fields.AwareDateTime):
    """An ISO datetime, naive meaning UTC (or refused: `naive_is_utc=False`), returned in UTC;
    years MIN_YEAR..MAX_YEAR."""

    def __init__(self, *, naive_is_utc: bool = True, **kwargs):
        super().__init__(default_timezone=dt.UTC if naive_is_utc else None, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        return to_bounded_utc(parsed)


def to_bounded_utc(value: dt.datetime) -> dt.datetime:
    """`value` in UTC, or a ValidationError when it is outside MIN_YEAR..MAX_YEAR."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValidationError(f"give a time between the years {MIN_YEAR} and {MAX_YEAR}")
    return value.astimezone(dt.UTC)


class UTCDate(fields.Date):
    """An ISO date; years MIN_YEAR..MAX_YEAR, so date arithmetic on it never overflows."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        if not MIN_YEAR <= parsed.year <= MAX_YEAR:
            raise ValidationError(f"give a date between the years {MIN_YEAR} and {MAX_YEAR}")
        return parsed


def id_field(*, strict: bool = True, **kwargs) -> fields.Integer:
    """An id in a request: an integer from 1 to MAX_ID (strict in JSON; query strings are text)."""
    return fields.Integer(strict=strict, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def accepts_body_up_to(limit: int):
    """Declare a view method that takes a bigger body than MAX_CONTENT_LENGTH (a bulk import)."""

    def decorate(func):
        func._max_content_length = limit
        return func

    return decorate


# The longest request target (path and query string) the engine reads: a long filter list fits;
# below gunicorn's own limit (app/platform/telemetry/gunicorn_config.py), so any server answers the same.
MAX_REQUEST_LINE = 8000


def refuse_oversized_request_line() -> None:
    """before_request: a request target over MAX_REQUEST_LINE bytes is a 414 (JSON, documented)."""
    target = len(request.environ.get("PATH_INFO", "")) + len(request.environ.get("QUERY_STRING", ""))
    if target > MAX_REQUEST_LINE:
        raise RequestURITooLarge(
            f"the path and query string are longer than {MAX_REQUEST_LINE} bytes; "
            "send long filters in fewer, shorter parameters"
        )


def _declared_body_limit() -> int | None:
    view = current_app.view_functions.get(request.endpoint or "")
    view_class = getattr(view, "view_class", None)
    target = getattr(view_class, request.method.lower(), None) if view_class else view
    return getattr(target, "_max_content_length", None)


def refuse_oversized_body() -> None:
    """before_request: a declared body over MAX_CONTENT_LENGTH (or the view's own limit, see
    `accepts_body_up_to`) is a 413 before anything reads it.

    A chunked body (no Content-Length) is cut off by werkzeug's stream limit instead, once the
    limit is passed: never buffered whole either.
    """
    declared = _declared_body_limit()
    if declared is not None:
        request.max_content_length = declared  # werkzeug's stream limit follows it too
        request.max_form_memory_size = declared  # and a big form field (a console import's sealed table)
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge(f"the request body is larger than {limit} bytes (MAX_CONTENT_LENGTH)")


# Error answers every operation of a kind can give, documented in one place so the OpenAPI document
# describes every response the API really gives (the fuzz test checks it: tests/test_fuzz.py). A
# view documents its own domain answers (409, 412, ...) with `@blp.alt_response`; app/platform/api/contract.py
# adds the rest (the 503, the Error body, headers, operationIds).
BODY_ERRORS = {
    "400": "BAD_REQUEST",  # malformed JSON
    "413": "REQUEST_ENTITY_TOO_LARGE",  # over MAX_CONTENT_LENGTH
    "422": "UNPROCESSABLE_ENTITY",  # a field is invalid
}
PATH_ID_ERRORS = {"404": "NOT_FOUND"}  # no such record in the caller's clinic
# Any request: a request line over MAX_REQUEST_LINE (or gunicorn's limit), headers over gunicorn's.
REQUEST_SIZE_ERRORS = {"414": "REQUEST_URI_TOO_LONG", "431": "REQUEST_HEADER_FIELDS_TOO_LARGE"}
RATE_LIMITED = {"429": "TOO_MANY_REQUESTS"}
PAGINATION_HEADER_DOC = {
    "description": "Pagination metadata, a JSON object",
    # `content`, not `schema`: the value is JSON, not OpenAPI's comma-separated `simple` style.
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    name: {"type": "integer"}
                    for name in (
                        "total", "total_pages", "first_page", "last_page", "page",
                        "previous_page", "next_page",
                    )
                },
            }
        }
    },
}  # fmt: skip


def error_responses(*, path: str, operation: dict, has_path_ids: bool) -> dict:
    """The shared error answers an operation can give, by what it takes (body, path ids, limits)."""
    answers: dict = dict(REQUEST_SIZE_ERRORS)
    if "requestBody" in operation:
        answers.update(BODY_ERRORS)
    if any(p.get("in") == "query" for p in operation.get("parameters", []) if isinstance(p, dict)):
        answers["422"] = BODY_ERRORS["422"]
    if has_path_ids or any(_names_a_record(p) for p in operation.get("parameters", [])):
        answers.update(PATH_ID_ERRORS)
    if not path.startswith(UNLIMITED_PATHS):
        answers.update(RATE_LIMITED)
    return answers


def _names_a_record(parameter) -> bool:
    """Query parameters holding an id (`source_id`, `coordinator_id`): a missing record is a 404.

    At this point flask-smorest's query parameters are still one marshmallow schema each."""
    if not isinstance(parameter, dict) or parameter.get("in") != "query":
        return False
    schema = parameter.get("schema")
    if isinstance(schema, type) and issubclass(schema, Schema):
        schema = schema()
    names = [f.data_key or n for n, f in schema.fields.items()] if isinstance(schema, Schema) else []
    return any(name.endswith(("_id", "_ids")) for name in [*names, parameter.get("name", "")])


_WERKZEUG_ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def openapi_path(rule: str) -> str:
    """A werkzeug rule (`/api/leads/<int:lead_id>`) as an OpenAPI path (`/api/leads/{lead_id}`)."""
    return _WERKZEUG_ARGUMENT.sub(r"{\1}", rule)


class _ErrorDocumentingSpec:
    """The APISpec, completing each operation (app/platform/api/contract.py) as its path is registered."""

    def __init__(self, spec, app):
        self._spec, self._app = spec, app

    def __getattr__(self, name):
        return getattr(self._spec, name)

    def path(self, *, rule, operations, parameters, **kwargs):
        view = self._app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        for method, operation in operations.items():
            shared = error_responses(path=rule.rule, operation=operation, has_path_ids=bool(rule.arguments))
            handler = getattr(view_class, method, None) if view_class else view
            contract.complete_operation(
                operation, method=method, path=openapi_path(rule.rule), shared=shared, view=handler
            )
        return self._spec.path(rule=rule, operations=operations, parameters=parameters, **kwargs)


class ApiBlueprint(SmorestBlueprint):
    """flask-smorest's Blueprint documenting the shared error answers and a JSON X-Pagination."""

    def arguments(self, schema, *, location="json", required=None, **kwargs):
        """A JSON body is documented as required only when its schema has a required field: a
        missing body reads as `{}`, which such a schema accepts (the document says what happens)."""
        if required is None:
            instance = schema() if isinstance(schema, type) else schema
            required = location != "json" or any(f.required for f in instance.fields.values())
        return super().arguments(schema, location=location, required=required, **kwargs)

    def register_views_in_doc(self, api, app, spec, *, name, parameters):
        super().register_views_in_doc(
            api, app, _ErrorDocumentingSpec(spec, app), name=name, parameters=parameters
        )

    def _document_pagination_metadata(self, spec, resp_doc):
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = PAGINATION_HEADER_DOC


class FollowupApi(Api):
    # No catch-all `default` response: each operation lists the statuses it really answers, so a
    # status the document does not name is a finding (schemathesis' status_code_conformance).
    DEFAULT_ERROR_RESPONSE_NAME = None
    ERROR_SCHEMA = contract.ErrorSchema

    def _register_responses(self):
        """The shared error answers (by HTTPStatus name), each with the Error body and its headers;
        registered lazily: only those an operation names appear in the document."""
        for name, answer in contract.SHARED_ANSWERS.items():
            answer = {**answer, "content": {"application/json": {"schema": self.ERROR_SCHEMA}}}
            self.spec.components.response(name, answer, lazy=True)


def make_blueprint(name: str, description: str) -> ApiBlueprint:
    return ApiBlueprint(name, __name__, url_prefix="/api", description=description)


def init_api(app) -> Api:
    app.config.update(
        API_TITLE="Follow-up Engine",
        API_VERSION="1.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Served by the app from the installed swagger-ui-bundle: no CDN, works offline.
        OPENAPI_SWAGGER_UI_URL="/api/docs/assets/",
        API_SPEC_OPTIONS={
            "info": {
                "description": "The Follow-up Engine's HTTP API: leads, tasks, follow-up automation and "
                "their reports, for a clinic's own frontend and integrations. Errors answer the `Error` "
                "schema with a machine-readable `code`."
            },
            # Relative: the document describes the server that serves it.
            "servers": [{"url": "/", "description": "The server serving this document"}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                },
                **contract.COMPONENTS,
            },
        },
    )
    # Before any blueprint is registered, so every `<int:...>` route gets the bound.
    app.url_map.converters["int"] = DatabaseIdConverter
    api = FollowupApi(app)
    api.register_converter(DatabaseIdConverter, integerconverter2paramschema)
    # The stream process's endpoint, served on its own server, documented in the same contract.
    api.spec.tag({"name": "Event stream", "description": "Each user's live events (the stream process)"})
    # A rule of its own (never routed here): flask-smorest's plugin reads the path from one.
    api.spec.path(rule=Rule(stream_document.PATH), operations={"get": stream_document.operation()})
    assets = FlaskBlueprint("swagger_ui_static", __name__)

    @assets.route("/api/docs/assets/<path:filename>")
    def swagger_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    app.register_blueprint(assets)
    return api


def set_item_count(pagination_parameters, total: int) -> None:
    pagination_parameters.item_count = total


def etag_for(data: dict, derived: tuple[str, ...] = ()) -> str:
    """The ETag of a serialized resource, leaving out the `derived` fields: those the engine rewrites
    on its own (a lead's score and next best action), which no client edits, so a background
    re-scoring never turns a client's next PUT into a 412."""
    kept = {key: value for key, value in data.items() if key not in derived}
    return hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()


def _etag_of(obj, schema) -> str:
    return etag_for(schema.dump(obj), getattr(schema, "ETAG_DERIVED", ()))


def check_if_match(current, schema) -> None:
    """A PUT carrying a stale If-Match is refused (412): someone changed the resource meanwhile."""
    if_match = request.headers.get("If-Match")
    if not if_match:
        return
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    if "*" not in wanted and _etag_of(current, schema) not in wanted:
        raise PreconditionFailed("the resource changed since you read it; fetch it again (ETag mismatch)")


def with_etag(obj, schema, status: int = 200):
    """`obj` as the response, with the ETag of its serialized form."""
    return obj, status, {"ETag": f'"{_etag_of(obj, schema)}"'}
