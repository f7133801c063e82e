from marshmallow import ValidationError, fields, validate

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema
from app.platform.db import MAX_ID
from app.platform.phi_policy import PolicedJSON
from app.platform.scheduling.models import STATUSES


def parse_subject(value: str) -> tuple[str, int]:
    """`lead:7` → ("lead", 7)."""
    kind, sep, ident = value.partition(":")
    if not sep or not kind or not (ident.isascii() and ident.isdigit()) or int(ident) > MAX_ID:
        raise ValidationError("write the subject as <type>:<id>, e.g. lead:7 or task:42")
    return kind, int(ident)


class JobQueryArgs(RequestSchema):
    status = fields.String(validate=validate.OneOf(STATUSES))
    kind = fields.String(validate=validate.Length(max=64))
    subject = fields.String(
        metadata={"description": "type:id, e.g. lead:7 or task:42"},
        validate=[validate.Length(max=64), validate.Regexp(r"^[^:]+:[0-9]{1,10}$"), parse_subject],
    )


class JobOut(AnswerSchema):
    id = fields.Integer()
    kind = fields.String()
    queue = fields.String()
    status = fields.String(metadata={"description": ", ".join(STATUSES)})
    subject = fields.String(allow_none=True, metadata={"description": "type:id, e.g. lead:7"})
    subject_type = fields.String(allow_none=True)
    subject_id = fields.Integer(allow_none=True)
    payload = PolicedJSON()
    due_at = fields.DateTime()
    origin = PolicedJSON(
        allow_none=True, metadata={"description": "why: rule id and version, event id, conditions seen"}
    )
    attempts = fields.Integer()
    max_attempts = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    dedupe_key = fields.String()
    created_at = fields.DateTime()
    dispatched_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
