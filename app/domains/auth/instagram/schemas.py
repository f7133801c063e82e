"""Request and answer schemas of a clinic's Instagram account."""

from __future__ import annotations

from marshmallow import fields, validate

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema


class InstagramAccountIn(RequestSchema):
    account_id = fields.String(
        required=True,
        validate=[
            validate.Length(max=64),
            validate.Regexp(r"^\d{1,64}$", error="an Instagram account id is digits only"),
        ],
        metadata={"description": "The Instagram professional account's id (IG_ID)"},
    )
    access_token = fields.String(
        required=True,
        load_only=True,
        validate=[
            validate.Length(min=8, max=1000),
            # Sent as a header to Meta: printable ASCII without spaces, as Meta's tokens are.
            validate.Regexp(r"^[\x21-\x7e]+$", error="letters, digits and symbols only, no spaces"),
        ],
        metadata={"description": "An Instagram user access token with instagram_business_manage_messages"},
    )


class InstagramAccountOut(AnswerSchema):
    account_id = fields.String()
    connected_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    access_token = fields.Method(
        "masked", metadata={"description": "The token, masked: only its last four characters"}
    )

    def masked(self, row) -> str:
        return "****" + row.token_hint


class InstagramContactOut(AnswerSchema):
    handle = fields.String(allow_none=True, metadata={"description": "the Instagram username, without @"})
    igsid = fields.String(metadata={"description": "the Instagram-scoped id Meta gives the user"})
    last_inbound_at = fields.DateTime(allow_none=True, metadata={"description": "their last DM"})
    automated_until = fields.DateTime(
        allow_none=True, metadata={"description": "automated messages may go until then (24 hours)"}
    )
    reply_until = fields.DateTime(
        allow_none=True, metadata={"description": "a person may reply until then (7 days, human agent tag)"}
    )
