"""Several open periods a day (a lunch break) and dated exceptions (a short Christmas Eve, a closed day)."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domains.business_hours.rules import (
    BusinessCalendar,
    InvalidHours,
    add_business_days,
    add_business_minutes,
    next_open,
    validate_business_hours,
)

NY = ZoneInfo("America/New_York")
LUNCH = [["09:00", "12:00"], ["13:00", "17:00"]]
HOURS = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), LUNCH) | {
    "exceptions": {"2026-12-24": [["09:00", "14:00"]], "2026-12-25": [], "2026-12-31": []}
}
CAL = BusinessCalendar.from_settings("America/New_York", HOURS, None)


def ny(*args):
    return datetime(*args, tzinfo=NY).astimezone(UTC)


def test_minutes_skip_the_lunch_break():
    assert add_business_minutes(CAL, ny(2026, 11, 18, 11, 58), 5) == ny(2026, 11, 18, 13, 3)
    assert next_open(CAL, ny(2026, 11, 18, 12, 30)) == ny(2026, 11, 18, 13, 0)
    assert not CAL.is_open(ny(2026, 11, 18, 12, 30)) and CAL.is_open(ny(2026, 11, 18, 13, 0))


def test_a_dated_exception_closes_early_and_another_closes_the_day():
    # Thursday 24 December closes at 14:00; closed on the 25th, then the weekend: Monday 28 December 09:03.
    assert add_business_minutes(CAL, ny(2026, 12, 24, 13, 58), 5) == ny(2026, 12, 28, 9, 3)
    # 31 December is closed by exception: a lead of the 30th at 16:58 is due on 1 January.
    assert add_business_minutes(CAL, ny(2026, 12, 30, 16, 58), 5) == ny(2027, 1, 1, 9, 3)


def test_an_exception_opens_a_public_holiday():
    opened = BusinessCalendar.from_settings(
        "America/New_York", {"thu": LUNCH, "exceptions": {"2026-11-26": [["10:00", "12:00"]]}}, "US"
    )
    assert next_open(opened, ny(2026, 11, 26, 8, 0)) == ny(2026, 11, 26, 10, 0)


def test_the_old_one_period_form_still_reads():
    old = BusinessCalendar.from_settings("UTC", {"mon": ["08:00", "17:00"], "tue": None}, None)
    assert old.periods(datetime(2026, 11, 23).date()) == old.week[0] and len(old.week[0]) == 1
    assert old.hours[0] == old.week[0][0] and old.hours[1] is None
    assert CAL.hours[0] == (CAL.week[0][0][0], CAL.week[0][1][1])  # the day's span, lunch included


def test_a_day_later_lands_in_that_day_s_open_periods():
    # Same local time the next open day; 12:30 there is lunch, so 13:00.
    assert add_business_days(CAL, ny(2026, 11, 17, 12, 30), 1) == ny(2026, 11, 18, 13, 0)
    assert add_business_days(CAL, ny(2026, 12, 23, 16, 0), 1) == ny(2026, 12, 24, 14, 0)


def test_a_clinic_open_until_24_00_every_day_never_closes():
    """A lead at 23:57 is due five minutes later, at 00:02 the next day; the minute before midnight
    is open, as a 00:00-23:59 clinic could not say."""
    always = BusinessCalendar.from_settings(
        "America/New_York",
        {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
        None,
    )
    assert add_business_minutes(always, ny(2026, 11, 27, 23, 57), 5) == ny(2026, 11, 28, 0, 2)
    assert always.is_open(ny(2026, 11, 27, 23, 59, 30))
    assert next_open(always, ny(2026, 11, 27, 23, 59, 30)) == ny(2026, 11, 27, 23, 59, 30)
    # An evening period to midnight, then closed: the next morning's opening.
    evenings = BusinessCalendar.from_settings(
        "UTC", {"fri": [["18:00", "24:00"]], "sat": ["09:00", "12:00"]}, None
    )
    late = datetime(2026, 11, 27, 23, 58, tzinfo=UTC)
    assert add_business_minutes(evenings, late, 5) == datetime(2026, 11, 28, 9, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("hours", "named"),
    [
        ({"mon": [["09:00", "12:00"], ["11:00", "17:00"]]}, "mon: periods overlap"),
        ({"tue": [["13:00", "12:00"]]}, "tue: opening 13:00 must be before closing 12:00"),
        ({"wed": [["9", "12:00"]]}, "wed: times must be HH:MM"),
        ({"exceptions": {"2026-02-30": []}}, "exceptions.2026-02-30: not a date"),
        ({"exceptions": {"2026-12-24": [["14:00", "09:00"]]}}, "exceptions.2026-12-24: opening"),
        ({"exceptions": ["2026-12-24"]}, "exceptions: must be an object"),
        ({"funday": None}, "unknown weekdays: funday"),
        ({"thu": [["24:00", "24:00"]]}, "thu: times must be HH:MM"),
        ({"fri": [["09:00", "24:30"]]}, "fri: times must be HH:MM"),
    ],
)
def test_bad_hours_name_the_day_at_fault(hours, named):
    with pytest.raises(InvalidHours, match=named):
        validate_business_hours(hours)
