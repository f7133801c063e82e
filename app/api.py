"""The flask-smorest Api: OpenAPI document, offline Swagger UI, security schemes, shared helpers."""

from __future__ import annotations

import hashlib
import json

import swagger_ui_bundle
from flask import Blueprint as FlaskBlueprint
from flask import request, send_from_directory
from flask_smorest import Api
from flask_smorest import Blueprint as SmorestBlueprint

from app.errors import PreconditionFailed


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
    api = Api(app)
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
