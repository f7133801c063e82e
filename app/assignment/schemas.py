"""Request schemas of assignment."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class AssignIn(Schema):
    user_id = fields.Integer(
        required=True,
        strict=True,
        metadata={"description": "An active treatment coordinator or clinic admin"},
    )
    reason = fields.String(allow_none=True, validate=validate.Length(max=500))
