"""The console's forms: login and the action buttons carry a CSRF token (Flask-WTF); the failures
filter is a GET form, read from the query string."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from flask_wtf import FlaskForm
from wtforms import Form, IntegerField, PasswordField, SelectField, StringField
from wtforms.fields import DateField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from app.console import failures, wording
from app.platform.api import MAX_YEAR, MIN_YEAR
from app.platform.db import MAX_ID
from app.platform.errors import ValidationFailed

# The filters' dates span the API's years (app/platform/api): "to" 9999-12-31 would mean before a next day
# that no datetime can hold.
MIN_DAY, MAX_DAY = date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31)


class LoginForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    # Only when the email and password open accounts in several clinics (the login then asks for it).
    clinic = IntegerField("Clinic id", validators=[Optional(), NumberRange(min=1, max=MAX_ID)])


class CodeForm(FlaskForm):
    """The login's second step: a code of the authenticator app, or a recovery code."""

    code = StringField("Code", validators=[DataRequired(), Length(min=6, max=64)])


class SetPasswordForm(FlaskForm):
    """A setup link's page: the link's one-time token (the page's script reads it from the link's
    fragment; typed by hand without the script) and the new password, twice."""

    token = StringField("Setup code from your email", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=1024)])
    again = PasswordField("The same password again", validators=[DataRequired(), Length(max=1024)])


class ForgotPasswordForm(FlaskForm):
    email = StringField("Email", validators=[DataRequired(), Length(max=254)])


class ActionForm(FlaskForm):
    """A button that changes something: only its CSRF token."""


# The checkbox beside the retry of a message whose outcome is unknown: ticked ("yes"), the admin
# accepts that the lead may get it twice; without it the retry is refused (409 naming it, as the API).
CONFIRM_MAY_DUPLICATE = "confirm_may_duplicate"  # as the API names it
# The statuses the filter offers: every source's, once each (filters_from refuses one a source lacks).
FAILURE_STATUSES = tuple(dict.fromkeys(s for statuses in failures.STATUSES.values() for s in statuses))


class FilterForm(Form):
    # Each choice said in words (wording.py); its value the code the filters and links carry.
    source = SelectField(
        "What",
        choices=[(s, wording.FAILURE_SOURCES[s].capitalize()) for s in failures.SOURCES],
        default=failures.NOTIFICATIONS,
    )
    status = SelectField(
        "Status",
        choices=[
            ("", wording.ANY_FAILURE),
            *((s, wording.failure_status(s)["word"]) for s in FAILURE_STATUSES),
        ],
        default="",
    )
    kind = StringField("Kind", validators=[Optional(), Length(max=64)])
    channel = SelectField(
        "Channel",
        choices=[("", wording.ANY_CHANNEL), *((c, wording.channel(c)) for c in failures.CHANNELS)],
        default="",
    )
    recipient = StringField("Recipient", validators=[Optional(), Length(max=254)])
    error = StringField("Error", validators=[Optional(), Length(max=200)])
    since = DateField("From", validators=[Optional()])
    until = DateField("To", validators=[Optional()])


FILTER_FIELDS = frozenset(FilterForm().data)  # the query-string keys a failures URL carries


def _day(value, extra_days: int = 0) -> datetime | None:
    if value is None:
        return None
    return datetime.combine(value, time(), tzinfo=UTC) + timedelta(days=extra_days)


def _checked_day(field) -> None:
    """A 422 naming a date outside MIN_DAY..MAX_DAY (rather than an OverflowError, a 500)."""
    value = field.data
    if value is not None and not MIN_DAY <= value <= MAX_DAY:
        raise ValidationFailed(field.name, f"give a date from {MIN_DAY.isoformat()} to {MAX_DAY.isoformat()}")


def filters_from(args) -> tuple[FilterForm, failures.Filters]:
    """The filter form and its Filters; a bad field is a 422 naming it."""
    form = FilterForm(args)
    if not form.validate():
        field, messages = next(iter(form.errors.items()))
        raise ValidationFailed(field, "; ".join(messages))
    source = form.source.data or failures.NOTIFICATIONS
    if form.status.data and form.status.data not in failures.STATUSES[source]:
        offered = ", ".join(wording.failure_status(s)["word"] for s in failures.STATUSES[source])
        raise ValidationFailed(
            "status", f"must be one of {offered} for {wording.FAILURE_SOURCES.get(source, source)}"
        )
    _checked_day(form.since)
    _checked_day(form.until)
    filters = failures.Filters(
        source=source,
        status=form.status.data or None,
        kind=form.kind.data or None,
        channel=form.channel.data or None,
        recipient=form.recipient.data or None,
        error=form.error.data or None,
        since=_day(form.since.data),
        until=_day(form.until.data, extra_days=1),  # "to" a day includes that day
    )
    return form, filters


MAX_PROGRESS_IDS = 100


_ID = re.compile(r"\s*([0-9]{1,10})\s*", re.ASCII)  # not str.isdigit: it takes "²", which int() refuses


def ids_from(text: str) -> list[int]:
    """`3,4,5` as ids; anything else (beyond the database's integer too) is a 422 naming `ids`."""
    parts = [p for p in text.split(",") if p.strip()]
    matches = [_ID.fullmatch(p) for p in parts]
    ids = [int(m.group(1)) for m in matches if m is not None]
    if not parts or len(parts) > MAX_PROGRESS_IDS or len(ids) < len(parts) or max(ids) > MAX_ID:
        raise ValidationFailed("ids", f"give 1 to {MAX_PROGRESS_IDS} bulk job ids, comma-separated")
    return ids
