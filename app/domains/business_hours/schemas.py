"""Business hours as the API takes them: days by their key (`mon`) or full name (`Monday`, any
case), stored and answered by their key."""

from __future__ import annotations

from marshmallow import ValidationError, fields

from app.domains.business_hours.rules import InvalidHours, validate_business_hours, with_weekday_keys


class BusinessHours(fields.Dict):
    """A weekly hours object (rules.py's module docstring), its days read as their stored keys."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        try:
            keyed = with_weekday_keys(value)
            validate_business_hours(keyed)
        except InvalidHours as exc:
            raise ValidationError(str(exc)) from exc
        return keyed
