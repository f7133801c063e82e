"""Request and response schemas of the signing secrets."""

from __future__ import annotations

from marshmallow import fields, validate

from app.domains.auth.signing import Scope
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema

MAX_OVERLAP_HOURS = 30 * 24
_SCOPES = ", ".join(s.value for s in Scope)


class SigningSecretIn(RequestSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    scopes = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in Scope])),
        required=True,
        validate=validate.Length(min=1, max=len(Scope)),
        metadata={
            "description": f"The endpoints the secret may sign for ({_SCOPES}). A secret with "
            "web_form retires the clinic's single webhook secret."
        },
    )


class RotateIn(RequestSchema):
    overlap_hours = fields.Integer(
        load_default=24,
        validate=validate.Range(min=0, max=MAX_OVERLAP_HOURS),
        metadata={"description": "How long the old secret still verifies beside the new one (0: not at all)"},
    )


class SigningSecretOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    key_id = fields.String(metadata={"description": "Sent as X-Followup-Key-Id with every signed request"})
    scopes = fields.List(fields.String())
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True, metadata={"description": "To the minute"})
    expires_at = fields.DateTime(
        allow_none=True,
        metadata={"description": "Rotated: it verifies until then, its successor from the start"},
    )
    replaced_by_id = fields.Integer(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class SigningSecretCreatedOut(SigningSecretOut):
    secret = fields.String(metadata={"description": "The secret: shown once, never again"})


class WebhookSecretOut(AnswerSchema):
    """The clinic's single webhook secret of before: whether it still signs web forms."""

    scopes = fields.List(fields.String(), metadata={"description": "web_form until retired, then none"})
    retired_at = fields.DateTime(allow_none=True)
