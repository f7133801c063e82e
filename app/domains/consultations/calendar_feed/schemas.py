"""Response schema of the calendar token."""

from marshmallow import fields

from app.platform.answers import AnswerSchema


class CalendarTokenOut(AnswerSchema):
    url = fields.String(metadata={"description": "The feed's secret URL; shown once, rotate to replace"})
    token = fields.String()
    created_at = fields.DateTime()
