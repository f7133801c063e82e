"""Helpers of the availability tests: a clinic in New York, providers and types over the API, free
slots read back as the API gives them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.platform import clock

ZONE = "America/New_York"
WEEKDAYS_9_TO_5 = {day: ["09:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def set_clinic_zone(client, tenant, zone: str = ZONE) -> None:
    resp = client.put("/api/clinic", json={"timezone": zone}, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()


def settings(client, tenant, **fields) -> dict:
    resp = client.put("/api/availability/settings", json=fields, headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def provider(
    client, tenant, name: str = "Dr. Lee", hours: dict | None = None, expect: int = 201, **extra
) -> dict:
    body = {"name": name, "hours": hours or WEEKDAYS_9_TO_5, **extra}
    resp = client.post("/api/availability/providers", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def consultation_type(client, tenant, provider_ids: list[int], expect: int = 201, **extra) -> dict:
    body = {"name": "New patient consultation", "duration_minutes": 60, "provider_ids": provider_ids, **extra}
    resp = client.post("/api/availability/types", json=body, headers=tenant.headers())
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def slots(client, tenant, type_id: int, first: date, last: date, **extra) -> list[dict]:
    query = {"type": type_id, "from": first.isoformat(), "to": last.isoformat(), **extra}
    resp = client.get("/api/availability", query_string=query, headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def local_times(found: list[dict], day: date) -> list[str]:
    """The local "HH:MM" starts of one local day's slots."""
    return [
        s["local_starts_at"][11:16]
        for s in found
        if datetime.fromisoformat(s["local_starts_at"]).date() == day
    ]


def next_weekday(weekday: int, at_least_days: int = 3, zone: str = ZONE) -> date:
    """The first local date on `weekday` (0 = Monday) at least `at_least_days` from today."""
    day = clock.now().astimezone(ZoneInfo(zone)).date() + timedelta(days=at_least_days)
    while day.weekday() != weekday:
        day += timedelta(days=1)
    return day


def at(day: date, hhmm: str, zone: str = ZONE) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def next_dst_change(zone: str = ZONE) -> date:
    """The first local date after today whose UTC offset differs from the day before's."""
    tz = ZoneInfo(zone)
    day = clock.now().astimezone(tz).date() + timedelta(days=1)
    for _ in range(400):
        before = datetime(day.year, day.month, day.day, 0, tzinfo=tz).utcoffset()
        after = datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset()
        if before != after:
            return day
        day += timedelta(days=1)
    raise AssertionError("no DST change within a year")
