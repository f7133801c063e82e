"""Daily work (the ledger's purge, intelligence's nightly run) is on the clock, at configured hours
(UTC, Celery's timezone): a beat started or restarted at any time runs it at the next such hour, so a
deploy every day never postpones it a whole day, as an interval of 86,400 seconds from beat's start did.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from celery.beat import ScheduleEntry
from celery.schedules import crontab

from app.platform import celery_config
from app.platform.config import ConfigError, Settings
from tests.conftest import TEST_PHI_KEY, TEST_SECRET_KEY

DAILY = {"scheduling-purge-done": "purge_hour", "intelligence-nightly": "nightly_hour"}
NOW = datetime(2026, 11, 25, 13, 47, 20, tzinfo=UTC)


def _entry(celery_app, settings, name: str, *, now: datetime, last_run_at: datetime | None = None):
    """Beat's entry for `name` as a beat with `settings` holds it, its clock stopped at `now`: with
    no `last_run_at` it is a fresh beat's (no schedule file), which counts from its own start."""
    spec = celery_config.beat_entries(settings)[name]
    schedule = spec["schedule"]
    schedule.nowfun = lambda: now
    schedule.app = celery_app
    return ScheduleEntry(
        name=name, task=spec["task"], schedule=schedule, last_run_at=last_run_at, app=celery_app
    )


def test_daily_work_runs_on_a_crontab_at_its_configured_hour():
    settings = Settings(purge_hour=1, nightly_hour=4)
    schedule = celery_config.beat_entries(settings)
    assert schedule["scheduling-purge-done"]["schedule"] == crontab(minute=0, hour=1)
    assert schedule["intelligence-nightly"]["schedule"] == crontab(minute=0, hour=4)
    # No entry is left counting a day (or more) from whenever beat started.
    intervals = {
        name: e["schedule"] for name, e in schedule.items() if not isinstance(e["schedule"], crontab)
    }
    assert set(intervals).isdisjoint(DAILY)
    assert max(intervals.values()) < 86400


def test_the_hours_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FOLLOWUP_NIGHTLY_HOUR", "5")
    monkeypatch.setenv("FOLLOWUP_PURGE_HOUR", "23")
    settings = Settings.from_env()
    schedule = celery_config.beat_entries(settings)
    assert schedule["intelligence-nightly"]["schedule"] == crontab(minute=0, hour=5)
    assert schedule["scheduling-purge-done"]["schedule"] == crontab(minute=0, hour=23)


@pytest.mark.parametrize(
    ("setting", "variable"),
    [("nightly_hour", "FOLLOWUP_NIGHTLY_HOUR"), ("purge_hour", "FOLLOWUP_PURGE_HOUR")],
)
def test_an_hour_outside_the_day_is_refused_naming_it(setting, variable):
    settings = Settings(secret_key=TEST_SECRET_KEY, phi_encryption_key=TEST_PHI_KEY, **{setting: 24})
    with pytest.raises(ConfigError, match=variable):
        settings.validate()


@pytest.mark.parametrize("name", sorted(DAILY))
def test_a_fresh_beat_runs_daily_work_at_the_next_configured_hour(celery_app, name):
    settings = Settings(purge_hour=2, nightly_hour=3)
    hour = getattr(settings, DAILY[name])
    entry = _entry(celery_app, settings, name, now=NOW)
    next_run = datetime(2026, 11, 26, hour, 0, tzinfo=UTC)
    remaining = entry.schedule.remaining_estimate(entry.last_run_at)
    assert remaining == next_run - NOW < timedelta(days=1)
    due, wait = entry.is_due()
    assert not due and wait == pytest.approx((next_run - NOW).total_seconds())


@pytest.mark.parametrize("name", sorted(DAILY))
def test_a_beat_restarted_just_before_the_hour_still_runs_it_at_the_hour(celery_app, name):
    settings = Settings(purge_hour=2, nightly_hour=3)
    at_hour = datetime(2026, 11, 26, getattr(settings, DAILY[name]), 0, tzinfo=UTC)
    started = at_hour - timedelta(seconds=30)
    fresh = _entry(celery_app, settings, name, now=started)
    assert fresh.schedule.remaining_estimate(fresh.last_run_at) == timedelta(seconds=30)
    # At the hour, the entry (last run: yesterday, kept in the schedule file; or none) is due.
    for last in (at_hour - timedelta(days=1), started):
        due, _ = _entry(
            celery_app, settings, name, now=at_hour + timedelta(seconds=1), last_run_at=last
        ).is_due()
        assert due, last
    # Having run, it waits for the same hour tomorrow, however often beat restarts meanwhile.
    ran = _entry(celery_app, settings, name, now=at_hour + timedelta(hours=5), last_run_at=at_hour)
    assert ran.schedule.remaining_estimate(ran.last_run_at) == timedelta(hours=19)
