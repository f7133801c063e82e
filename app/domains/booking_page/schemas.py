"""The booking page's settings: where it may be embedded and the cut-off of a family's own changes;
its address (from the clinic's public key) is shown, never set."""

from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate

from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema

MAX_ORIGINS = 20


class Origin(fields.String):
    """A website origin: scheme, host and port only (https://www.example-clinic.com)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().rstrip("/")
        parts = urlsplit(text)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
            raise ValidationError("an origin: https://host or https://host:port, no path")
        if any(c in text for c in " ;,'\""):
            raise ValidationError("an origin: https://host or https://host:port, no path")
        return text.lower()


class BookingPageSettingsIn(RequestSchema):
    embed_origins = fields.List(
        Origin(validate=validate.Length(max=200)),
        validate=validate.Length(max=MAX_ORIGINS),
        metadata={"description": "the clinic's website origins that may embed the page; [] none may"},
    )
    change_cutoff_hours = fields.Integer(
        strict=True,
        validate=validate.Range(min=0, max=24 * 14),
        metadata={"description": "a family may move or cancel through its link until this long before"},
    )


class BookingPageSettingsOut(AnswerSchema):
    page_url = fields.String(metadata={"description": "the clinic's public booking page"})
    embed_origins = fields.List(fields.String())
    change_cutoff_hours = fields.Integer()
