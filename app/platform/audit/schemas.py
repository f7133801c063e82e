from marshmallow import ValidationError, fields, validate

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema
from app.platform.phi_policy import PolicedJSON


def parse_subject(value: str) -> tuple[str, str]:
    """`lead:7` → ("lead", "7")."""
    kind, sep, ident = value.partition(":")
    if not sep or not kind or not ident:
        raise ValidationError("write the subject as <type>:<id>, e.g. lead:7")
    return kind, ident


class AuditQueryArgs(RequestSchema):
    subject = fields.String(
        metadata={"description": "type:id, e.g. lead:7"},
        validate=[validate.Length(max=64), validate.Regexp(r"^[^:]+:.+$"), parse_subject],
    )
    actor = fields.String(
        metadata={"description": "user:3, api_key:2 or system"}, validate=validate.Length(max=64)
    )
    action = fields.String(validate=validate.Length(max=64))


class AuditEventOut(AnswerSchema):
    id = fields.Integer()
    actor = fields.String()
    action = fields.String()
    subject_type = fields.String()
    # Null for an action on no one record (an export, a bulk retry): the column is nullable.
    subject_id = fields.String(allow_none=True)
    # JSON objects (the model's columns are dicts), dumped through the PHI policy for the reader: a
    # lead's update keeps its address and the patient's name from a reader without `lead:phi`.
    before = PolicedJSON(allow_none=True)
    after = PolicedJSON(allow_none=True)
    at = fields.DateTime()
