"""Request and response schemas of availability's configuration (types, providers, closures,
settings). A provider's calendar feed address is taken, never given back: only its status."""

from marshmallow import ValidationError, fields, validate

from app.domains.availability.models import FeedStatus, ProviderKind, VisitMode
from app.platform.answers import AnswerSchema
from app.platform.api import RequestSchema, StrictBoolean, UTCDate, id_field

MINUTES_A_DAY = 24 * 60
HOURS_TEXT = (
    'weekly hours in the clinic\'s timezone, as business hours: {"mon": ["09:00", "17:00"], ..., '
    '"exceptions": {"2026-12-24": [["09:00", "12:00"]], "2026-12-28": []}} (a day [] or null: off)'
)


def _name(required: bool) -> fields.String:
    return fields.String(required=required, validate=validate.Length(min=1, max=120))


def _minutes(maximum: int, what: str, *, allow_none: bool = False) -> fields.Integer:
    return fields.Integer(
        strict=True,
        allow_none=allow_none,
        validate=validate.Range(min=0, max=maximum),
        metadata={"description": what},
    )


def _kind() -> fields.String:
    return fields.String(validate=validate.OneOf([k.value for k in ProviderKind]))


class SettingsIn(RequestSchema):
    buffer_minutes = _minutes(240, "free minutes kept after each visit")
    min_notice_minutes = _minutes(60 * MINUTES_A_DAY, "no slot sooner than this from now")
    horizon_days = fields.Integer(
        strict=True,
        validate=validate.Range(min=1, max=365),
        metadata={"description": "no slot later than this"},
    )
    slot_step_minutes = fields.Integer(
        strict=True,
        validate=validate.Range(min=5, max=240),
        metadata={"description": "between offered starts"},
    )
    webhook_wins = StrictBoolean(
        metadata={
            "description": "the practice-management system's booking into a taken time is stored (a clash)"
        }
    )


class SettingsOut(AnswerSchema):
    buffer_minutes = fields.Integer()
    min_notice_minutes = fields.Integer()
    horizon_days = fields.Integer()
    slot_step_minutes = fields.Integer()
    webhook_wins = fields.Boolean()


class FeedUrl(fields.String):
    """An http(s) address of an iCalendar feed."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if text and not text.lower().startswith(("https://", "http://")):
            raise ValidationError("give the feed's http(s) address")
        return text


def _feed() -> FeedUrl:
    return FeedUrl(
        allow_none=True,
        validate=validate.Length(max=2000),
        metadata={
            "description": "a private iCalendar address (Google's, Outlook's): kept encrypted, never shown"
        },
    )


class ProviderCreateIn(RequestSchema):
    name = _name(True)
    kind = fields.String(
        load_default=ProviderKind.PROVIDER.value, validate=validate.OneOf([k.value for k in ProviderKind])
    )
    hours = fields.Dict(required=True, metadata={"description": HOURS_TEXT})
    feed_url = _feed()


class ProviderChangeIn(RequestSchema):
    name = _name(False)
    kind = _kind()
    hours = fields.Dict(metadata={"description": HOURS_TEXT})
    active = StrictBoolean()
    feed_url = _feed()


class ProviderOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    kind = fields.String()
    hours = fields.Dict()
    active = fields.Boolean()
    has_feed = fields.Method("_has_feed", metadata={"description": "a calendar feed is set (never shown)"})
    feed_status = fields.String(
        allow_none=True, metadata={"description": ", ".join(s.value for s in FeedStatus)}
    )
    feed_error = fields.String(allow_none=True, metadata={"description": "why the last read failed"})
    feed_checked_at = fields.DateTime(allow_none=True)
    feed_ok_at = fields.DateTime(allow_none=True, metadata={"description": "the last good copy's time"})

    def _has_feed(self, provider) -> bool:
        return provider.feed_url is not None


def _type_fields(required: bool) -> dict:
    return {
        "name": _name(required),
        "duration_minutes": fields.Integer(
            required=required, strict=True, validate=validate.Range(min=5, max=480)
        ),
        "mode": fields.String(
            validate=validate.OneOf([m.value for m in VisitMode]),
            **({"load_default": VisitMode.IN_PERSON.value} if required else {}),
        ),
        "provider_ids": fields.List(id_field(), required=required, validate=validate.Length(min=1, max=50)),
        "buffer_minutes": _minutes(240, "the type's own buffer (null: the clinic's)", allow_none=True),
        "min_notice_minutes": _minutes(
            60 * MINUTES_A_DAY, "the type's own notice (null: the clinic's)", allow_none=True
        ),
        "horizon_days": fields.Integer(strict=True, allow_none=True, validate=validate.Range(min=1, max=365)),
    }


TypeCreateIn = RequestSchema.from_dict(_type_fields(True), name="TypeCreateIn")
TypeChangeIn = RequestSchema.from_dict(
    {**_type_fields(False), "active": StrictBoolean()}, name="TypeChangeIn"
)


class TypeOut(AnswerSchema):
    id = fields.Integer()
    name = fields.String()
    duration_minutes = fields.Integer()
    mode = fields.String(metadata={"description": ", ".join(m.value for m in VisitMode)})
    provider_ids = fields.List(fields.Integer())
    buffer_minutes = fields.Integer(allow_none=True)
    min_notice_minutes = fields.Integer(allow_none=True)
    horizon_days = fields.Integer(allow_none=True)
    active = fields.Boolean()


class ClosureIn(RequestSchema):
    starts_on = UTCDate(required=True, metadata={"description": "the clinic's local date, YYYY-MM-DD"})
    ends_on = UTCDate(metadata={"description": "the last closed day (default: starts_on)"})
    reason = fields.String(
        allow_none=True, validate=validate.Length(max=200), metadata={"description": "e.g. a holiday"}
    )


class ClosureOut(AnswerSchema):
    id = fields.Integer()
    starts_on = fields.Date()
    ends_on = fields.Date()
    reason = fields.String(allow_none=True)
