"""Helpers of the booking page tests: a clinic whose provider takes consultations all day, its page's
address, the page's form read back as a browser would post it, and a clock moved past the form's
fastest-submit check."""

from __future__ import annotations

import html
import re
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from app.platform import clock
from tests.automation.outreachkit import configure_clinic
from tests.availability.kit import consultation_type, provider, settings

ALL_DAY = {day: ["00:00", "24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
CLINIC_NUMBER = "+14155550100"
FAMILY_ZONE = "Asia/Tokyo"  # never the clinic's (an Etc/GMT zone where it is midday now)


def bookable_clinic(client, tenant, **clinic_settings) -> dict:
    """The clinic (texts from its number) with one provider free all day every day, hourly visits
    on the half hour; its consultation type."""
    configure_clinic(client, tenant, sms_number=CLINIC_NUMBER, **clinic_settings)
    settings(client, tenant, slot_step_minutes=30, min_notice_minutes=0, horizon_days=365, buffer_minutes=0)
    doctor = provider(client, tenant, hours=ALL_DAY)
    return consultation_type(client, tenant, [doctor["id"]])


def page_settings(client, tenant, expect: int = 200, **changes) -> dict:
    if changes:
        resp = client.put("/api/booking-page/settings", json=changes, headers=tenant.headers())
    else:
        resp = client.get("/api/booking-page/settings", headers=tenant.headers("front_desk"))
    assert resp.status_code == expect, resp.get_json()
    return resp.get_json()


def page_path(client, tenant) -> str:
    return urlsplit(page_settings(client, tenant)["page_url"]).path


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} on the page"
    return html.unescape(found.group(1))


def slot_values(page: str) -> list[str]:
    return [html.unescape(v) for v in re.findall(r'name="starts_at" value="([^"]+)"', page)]


def tomorrow_at(hhmm: str, zone: str = FAMILY_ZONE) -> datetime:
    hours, minutes = map(int, hhmm.split(":"))
    day = clock.now().astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@contextmanager
def later(seconds: float):
    """The web edge's clock `seconds` ahead, for the requests inside: a person's pause between reading
    the page and sending it (API tokens are issued outside, on the real clock)."""
    real = clock.now
    clock.now = lambda: real() + timedelta(seconds=seconds)
    try:
        yield
    finally:
        clock.now = real
