from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from app.domains.business_hours.rules import (
    WEEKDAYS,
    BusinessCalendar,
    NeverOpen,
    add_business_days,
    add_business_minutes,
    next_open,
)

NY = ZoneInfo("America/New_York")
WEEKDAYS_8_TO_5 = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": None,
    "sun": None,
}
CAL = BusinessCalendar.from_settings("America/New_York", WEEKDAYS_8_TO_5, "US")


def ny(*args):
    return datetime(*args, tzinfo=NY)


def test_inside_hours_is_plain_addition():
    assert add_business_minutes(CAL, ny(2026, 11, 18, 10, 0), 5) == ny(2026, 11, 18, 10, 5).astimezone(UTC)


def test_friday_night_lead_is_due_five_minutes_after_monday_opening():
    assert add_business_minutes(CAL, ny(2026, 11, 20, 22, 0), 5) == ny(2026, 11, 23, 8, 5).astimezone(UTC)


def test_minutes_spill_over_closing_into_next_opening():
    assert add_business_minutes(CAL, ny(2026, 11, 18, 16, 58), 5) == ny(2026, 11, 19, 8, 3).astimezone(UTC)


def test_holidays_are_skipped():
    # Thanksgiving 2026 is Thursday 26 November: a lead on Wednesday night waits until Friday.
    assert add_business_minutes(CAL, ny(2026, 11, 25, 21, 0), 5) == ny(2026, 11, 27, 8, 5).astimezone(UTC)
    no_holidays = BusinessCalendar.from_settings("America/New_York", WEEKDAYS_8_TO_5, None)
    assert add_business_minutes(no_holidays, ny(2026, 11, 25, 21, 0), 5) == ny(2026, 11, 26, 8, 5).astimezone(
        UTC
    )


def test_dst_change_keeps_local_opening_time():
    # US DST ends Sunday 1 November 2026: Friday 30 Oct 20:00 EDT -> Monday 2 Nov 08:05 EST.
    assert add_business_minutes(CAL, ny(2026, 10, 30, 20, 0), 5) == datetime(2026, 11, 2, 13, 5, tzinfo=UTC)


def test_next_open_and_next_business_day():
    assert next_open(CAL, ny(2026, 11, 21, 12, 0)) == ny(2026, 11, 23, 8, 0).astimezone(UTC)
    assert add_business_days(CAL, ny(2026, 11, 20, 15, 30), 1) == ny(2026, 11, 23, 15, 30).astimezone(UTC)
    assert add_business_days(CAL, ny(2026, 11, 25, 7, 0), 1) == ny(2026, 11, 27, 8, 0).astimezone(UTC)


def test_a_clinic_that_never_opens_says_so():
    closed = BusinessCalendar.from_settings("UTC", {}, None)
    with pytest.raises(NeverOpen):
        add_business_minutes(closed, datetime(2026, 1, 1, tzinfo=UTC), 5)


def test_business_minutes_across_a_dst_change_are_real_minutes():
    """180 open minutes from 00:00 EST on the night clocks spring forward (02:00 → 03:00) end at
    08:00Z, three hours of real time later; the local wall clock shows 04:00 EDT, not 03:00."""
    always_open = BusinessCalendar.from_settings(
        "America/New_York", {day: ["00:00", "23:59"] for day in WEEKDAYS}, None
    )
    start = datetime(2025, 3, 9, 0, 0, tzinfo=ZoneInfo("America/New_York"))
    assert start.astimezone(UTC) == datetime(2025, 3, 9, 5, 0, tzinfo=UTC)
    assert add_business_minutes(always_open, start, 180) == datetime(2025, 3, 9, 8, 0, tzinfo=UTC)
    # And back in the autumn (01:00-02:00 happens twice): still three real hours.
    autumn = datetime(2025, 11, 2, 0, 0, tzinfo=ZoneInfo("America/New_York"))
    assert add_business_minutes(always_open, autumn, 180) == datetime(2025, 11, 2, 7, 0, tzinfo=UTC)
