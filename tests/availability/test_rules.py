"""The slot arithmetic without a database: overlap by bisection (a long hold hiding shorter ones),
the step from each opening, notice and horizon, closed days (closures, holidays, exceptions)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.domains.availability import rules
from app.domains.business_hours.rules import BusinessCalendar

MONDAY = date(2027, 1, 4)
HOURS = {"mon": ["09:00", "12:00"]}


def at(hour: int, minute: int = 0, day: date = MONDAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def test_a_long_hold_keeps_blocking_after_shorter_ones_start_inside_it():
    held = rules.ProviderTime(
        1, BusinessCalendar.from_settings("UTC", HOURS, None), [(at(9), at(11)), (at(9, 30), at(9, 45))]
    )
    assert not held.is_free(at(10), at(10, 30))  # inside the long one, after the short one ended
    assert held.is_free(at(11), at(12))  # touching its end is free
    assert held.is_free(at(8), at(9))  # touching its start is free
    assert not held.is_free(at(8, 30), at(9, 1))


def test_slots_step_from_the_opening_within_notice_and_horizon():
    calendar = BusinessCalendar.from_settings("UTC", HOURS, None)
    slot_rules = rules.SlotRules(
        duration=timedelta(minutes=60),
        buffer=timedelta(minutes=15),
        step=timedelta(minutes=30),
        notice=timedelta(hours=1),
        horizon=timedelta(days=30),
    )
    provider = rules.ProviderTime(7, calendar, [(at(11), at(11, 30))])
    now = at(8, 15)  # the notice leaves 09:15 onwards
    found = rules.free_slots([provider], slot_rules, (MONDAY, MONDAY), frozenset(), now)
    # 09:30 ends 10:30 + 15 buffer = 10:45, clear of 11:00; 10:00 would hold until 11:15.
    assert [s.starts_at for s in found] == [at(9, 30)]
    assert found[0].provider_ids == (7,) and found[0].ends_at == at(10, 30)
    far = rules.free_slots([provider], slot_rules, (MONDAY, MONDAY), frozenset(), now - timedelta(days=40))
    assert far == []  # beyond the horizon


def test_closed_days_are_closures_holidays_and_closing_exceptions():
    calendar = BusinessCalendar.from_settings(
        "America/New_York", {"mon": ["09:00", "17:00"], "exceptions": {"2027-01-06": []}}, "US"
    )
    span = (date(2026, 12, 31), date(2027, 1, 8))
    closed = rules.closed_days([(date(2027, 1, 7), date(2027, 1, 8))], calendar, span)
    assert closed == {date(2027, 1, 1), date(2027, 1, 6), date(2027, 1, 7), date(2027, 1, 8)}


def test_the_nearest_slots_either_side_in_time_order():
    def slot(hour):
        return rules.Slot(at(hour), at(hour + 1), at(hour), (1,))

    options = [slot(h) for h in (8, 9, 12, 13, 17)]
    assert [s.starts_at.hour for s in rules.nearest(options, at(11), 3)] == [9, 12, 13]
