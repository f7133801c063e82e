"""Schemas of the free-slot search and the clashes list (times and providers: no family's details)."""

from marshmallow import fields

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDate, id_field


class SlotArgs(RequestSchema):
    type = id_field(strict=False, required=True, metadata={"description": "the consultation type's id"})
    from_ = UTCDate(required=True, data_key="from", metadata={"description": "the clinic's first local day"})
    to = UTCDate(required=True, metadata={"description": "the clinic's last local day (at most 62 days on)"})
    provider = id_field(strict=False, metadata={"description": "one of the type's providers only"})


class SlotOut(AnswerSchema):
    starts_at = fields.DateTime(metadata={"description": "UTC"})
    ends_at = fields.DateTime(metadata={"description": "UTC"})
    local_starts_at = fields.DateTime(metadata={"description": "the clinic's local time, with its offset"})
    provider_ids = fields.List(fields.Integer(), metadata={"description": "the providers free then"})


class ClashArgs(RequestSchema):
    open = StrictBoolean(metadata={"description": "only the clashes no one resolved (default true)"})


class ClashOut(AnswerSchema):
    id = fields.Integer()
    consultation_id = fields.Integer(
        metadata={"description": "the practice-management system's booking, kept"}
    )
    clashes_with_id = fields.Integer(metadata={"description": "the consultation it overlaps"})
    provider_id = fields.Integer()
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    created_at = fields.DateTime()
    resolved_at = fields.DateTime(allow_none=True)
