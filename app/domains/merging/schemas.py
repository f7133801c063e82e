"""Merge and dismiss: requests and answers."""

from __future__ import annotations

from marshmallow import fields

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, id_field


class MergeIn(RequestSchema):
    from_lead_id = id_field(
        required=True,
        metadata={"description": "The lead merged into this one: it is archived with `merged_into_id`"},
    )


class DismissedOut(AnswerSchema):
    lead_id = fields.Integer()
    other_lead_id = fields.Integer()
    dismissed_at = fields.DateTime(metadata={"description": "When the pair was first dismissed"})
