"""The base of every request schema and its guarded fields: text that cannot be stored, booleans that
are not JSON's true or false, and integers given with a fraction are refused, naming the field
(a 422), before anything reads them."""

from __future__ import annotations

import re
from collections.abc import Mapping

from marshmallow import Schema, ValidationError, fields, pre_load


def _strings(value, name: str):
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, Mapping):
        for key in value:
            if isinstance(key, str):
                # A bad key is reported under its parent (or _schema): never echoed back.
                yield name or "_schema", key
            yield from _strings(value[key], name or str(key))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, name)


_SURROGATE = re.compile("[\ud800-\udfff]")  # one C scan of the text, not a generator per character


def _unstorable(text: str) -> str | None:
    """Why `text` cannot be stored or encoded as UTF-8 (None when it can)."""
    if "\x00" in text:
        return "must not contain NUL characters"
    if _SURROGATE.search(text):
        return "must not contain unpaired surrogates (invalid Unicode)"
    return None


class StrictBoolean(fields.Boolean):
    """A boolean that is a JSON true or false, never what marshmallow's Boolean also takes (0, 1,
    "yes", "on"...): `"is_default": 0` is a 422 naming the field. Every request schema's booleans
    are this (tests/test_guarded_schemas.py checks). A query string has only text: RequestSchema
    reads its `true` and `false` as booleans first."""

    default_error_messages = {"invalid": "Not a boolean: give true or false."}

    def _deserialize(self, value, attr, data, **kwargs):
        # isinstance, not `in truthy`: 1 == True and 0 == False in Python.
        if isinstance(value, bool):
            return value
        raise self.make_error("invalid")


_QUERY_BOOLEANS = {"true": True, "false": False}

NOT_WHOLE = "Not a whole number: give an integer."


def _fractional(value) -> bool:
    """A JSON number with a fractional part (1.5, 2.6e-42), or no number at all (NaN, infinity)."""
    return isinstance(value, float) and not value.is_integer()


def _has_fraction(field: fields.Field, value) -> bool:
    """Whether `value`, given for `field`, holds a fraction where the field takes an integer.

    marshmallow's Integer (strict=False, so that a query string's "5" reads as 5) truncates a
    float: `2.6e-42` would be read as 0 where the document says integer. A nested request schema
    checks its own fields (it is a RequestSchema too)."""
    if isinstance(field, fields.Integer):
        return _fractional(value)
    if isinstance(field, fields.List) and isinstance(value, list):
        return any(_has_fraction(field.inner, item) for item in value)
    if isinstance(field, fields.Tuple) and isinstance(value, list):
        return any(_has_fraction(inner, item) for inner, item in zip(field.tuple_fields, value, strict=False))
    if isinstance(field, fields.Dict) and field.value_field is not None and isinstance(value, Mapping):
        return any(_has_fraction(field.value_field, item) for item in value.values())
    return False


class RequestSchema(Schema):
    """Base of request schemas: text holding NUL characters or lone surrogates is refused, naming
    the field (keys included).

    PostgreSQL cannot store NUL in text, and a lone surrogate (`"\\ud800"` is valid JSON) cannot be
    encoded as UTF-8; without this, such input would fail in the database or the JSON encoder.
    """

    @pre_load
    def read_query_booleans(self, data, **kwargs):
        """A query string (or form) is text, a JSON body is a dict: the text `true` or `false` of a
        StrictBoolean field becomes that boolean; any other text stays text, and is refused."""
        if isinstance(data, dict) or not isinstance(data, Mapping):
            return data
        loaded = {key: data[key] for key in data}
        for name, field in self.load_fields.items():
            key = field.data_key or name
            value = loaded.get(key)
            if isinstance(field, StrictBoolean) and isinstance(value, str):
                loaded[key] = _QUERY_BOOLEANS.get(value.lower(), value)
        return loaded

    @pre_load
    def refuse_fractions(self, data, **kwargs):
        """Every integer field, in every request schema, refuses a number with a fraction (a 422
        naming the field) instead of marshmallow's silent truncation."""
        if not isinstance(data, Mapping):
            return data
        bad = {
            field.data_key or name: [NOT_WHOLE]
            for name, field in self.load_fields.items()
            if _has_fraction(field, data.get(field.data_key or name))
        }
        if bad:
            raise ValidationError(bad)
        return data

    @pre_load
    def refuse_unstorable_text(self, data, **kwargs):
        bad: dict[str, list[str]] = {}
        for name, text in _strings(data, ""):
            reason = _unstorable(text)
            if reason:
                bad.setdefault(name if _unstorable(name) is None else "_schema", [reason])
        if bad:
            raise ValidationError(bad)
        return data
