"""Request schemas of assignment."""

from __future__ import annotations

from marshmallow import fields, validate

from app.platform.api import RequestSchema, id_field


class AssignIn(RequestSchema):
    user_id = id_field(
        required=True, metadata={"description": "An active treatment coordinator or clinic admin"}
    )
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))
