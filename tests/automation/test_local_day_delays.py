"""Delays in days are local calendar days, and contact-time suggestions skip a lunch break."""

from __future__ import annotations

from datetime import UTC, datetime

from app.domains.automation.rules import after_delay
from app.domains.business_hours.rules import BusinessCalendar
from app.domains.intelligence import contact_time_rules

WEEKDAYS_WITH_LUNCH = {
    day: [["09:00", "12:00"], ["13:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
}


def _calendar(hours=WEEKDAYS_WITH_LUNCH) -> BusinessCalendar:
    return BusinessCalendar.from_settings("America/New_York", hours, None)


def test_seven_days_later_keeps_the_local_time_across_the_clock_change():
    thursday_9am_edt = datetime(2026, 10, 29, 13, 0, tzinfo=UTC)  # 09:00 New York, summer time
    later = after_delay(thursday_9am_edt, {"amount": 7, "unit": "days"}, _calendar())
    assert later == datetime(2026, 11, 5, 14, 0, tzinfo=UTC)  # 09:00 New York, winter time
    thirty = after_delay(thursday_9am_edt, {"amount": 30, "unit": "days"}, _calendar())
    assert thirty == datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    # Without a clinic calendar, days stay 24-hour blocks.
    assert after_delay(thursday_9am_edt, {"amount": 7, "unit": "days"}, None) == datetime(
        2026, 11, 5, 13, 0, tzinfo=UTC
    )


def test_a_lunch_break_is_never_a_suggested_contact_time():
    calendar = _calendar()
    monday_lunch = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 12:30 New York
    assert not contact_time_rules.is_open_at(calendar, monday_lunch)
    assert contact_time_rules.is_open_at(calendar, datetime(2026, 11, 23, 18, 30, tzinfo=UTC))
    monday_8am = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
    hours = contact_time_rules.open_hours(calendar, monday_8am, days=1)
    local = [slot.starts_at.astimezone(calendar.zone).strftime("%H:%M") for slot in hours]
    assert local == ["09:00", "10:00", "11:00", "13:00", "14:00", "15:00", "16:00"]
    # Rates that love noon still cannot put a call in the break.
    rates = contact_time_rules.smooth([1] * 168, [0] * 168)
    noon = 0 * 24 + 12
    loved = contact_time_rules.ContactRates(
        tuple(1.0 if s == noon else 0.1 for s in range(168)), rates.calls, rates.answered, 0.5, "clinic"
    )
    best = contact_time_rules.best_upcoming(loved, calendar, monday_8am)
    assert all(contact_time_rules.is_open_at(calendar, slot.starts_at) for slot in best)
