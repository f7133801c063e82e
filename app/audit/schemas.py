from marshmallow import Schema, ValidationError, fields, validate

from app.api import RequestSchema


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


class AuditEventOut(Schema):
    id = fields.Integer()
    actor = fields.String()
    action = fields.String()
    subject_type = fields.String()
    subject_id = fields.String()
    # JSON objects (the model's columns are dicts); the type keeps OpenAPI's `nullable` meaningful.
    before = fields.Raw(allow_none=True, metadata={"type": "object"})
    after = fields.Raw(allow_none=True, metadata={"type": "object"})
    at = fields.DateTime()
