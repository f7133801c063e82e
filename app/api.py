"""The flask-smorest Api: OpenAPI document, offline Swagger UI, security schemes, shared helpers."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import request, send_from_directory
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint
from flask_smorest.spec.plugins import integerconverter2paramschema
from marshmallow import Schema, ValidationError, fields, pre_load, validate
from werkzeug.routing import IntegerConverter

from app.db import MAX_ID
from app.errors import PreconditionFailed


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in a route, bounded to MAX_ID: an oversized id does not match (404)."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


# Timestamps a request may carry: far enough for any real history or plan, near enough that
# converting to UTC (and a day's arithmetic) never overflows Python's datetime.
MIN_YEAR, MAX_YEAR = 1900, 2999


def _strings(value, name: str):
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, Mapping):
        for key in value:
            yield from _strings(value[key], name or str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, name)


class RequestSchema(Schema):
    """Base of request schemas: text holding NUL characters is refused, naming the field.

    PostgreSQL cannot store NUL in text; without this, such input would fail in the database.
    """

    @pre_load
    def refuse_nul_characters(self, data, **kwargs):
        bad = sorted({name for name, text in _strings(data, "") if "\x00" in text})
        if bad:
            raise ValidationError({name: ["must not contain NUL characters"] for name in bad})
        return data


class UTCDateTime(fields.AwareDateTime):
    """An ISO datetime, naive meaning UTC, returned in UTC; years MIN_YEAR..MAX_YEAR."""

    def __init__(self, **kwargs):
        super().__init__(default_timezone=dt.UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        return to_bounded_utc(parsed)


def to_bounded_utc(value: dt.datetime) -> dt.datetime:
    """`value` in UTC, or a ValidationError when it is outside MIN_YEAR..MAX_YEAR."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValidationError(f"give a time between the years {MIN_YEAR} and {MAX_YEAR}")
    return value.astimezone(dt.UTC)


def id_field(*, strict: bool = True, **kwargs) -> fields.Integer:
    """An id in a request: an integer from 1 to MAX_ID (strict in JSON; query strings are text)."""
    return fields.Integer(strict=strict, validate=validate.Range(min=1, max=MAX_ID), **kwargs)


def make_blueprint(name: str, description: str) -> SmorestBlueprint:
    return SmorestBlueprint(name, __name__, url_prefix="/api", description=description)


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
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                }
            },
        },
    )
    # Before any blueprint is registered, so every `<int:...>` route gets the bound.
    app.url_map.converters["int"] = DatabaseIdConverter
    api = Api(app)
    api.register_converter(DatabaseIdConverter, integerconverter2paramschema)
    assets = FlaskBlueprint("swagger_ui_static", __name__)

    @assets.route("/api/docs/assets/<path:filename>")
    def swagger_asset(filename):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)

    app.register_blueprint(assets)
    return api


def set_item_count(pagination_parameters, total: int) -> None:
    pagination_parameters.item_count = total


def etag_for(data: dict) -> str:
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def check_if_match(current, schema) -> None:
    """A PUT carrying a stale If-Match is refused (412): someone changed the resource meanwhile."""
    if_match = request.headers.get("If-Match")
    if not if_match:
        return
    wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
    if "*" not in wanted and etag_for(schema.dump(current)) not in wanted:
        raise PreconditionFailed("the resource changed since you read it; fetch it again (ETag mismatch)")


def with_etag(obj, schema, status: int = 200):
    """`obj` as the response, with the ETag of its serialized form."""
    return obj, status, {"ETag": f'"{etag_for(schema.dump(obj))}"'}
