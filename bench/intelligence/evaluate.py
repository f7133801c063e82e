"""Measure the intelligence math against a generated history's planted truths (pure: no database)."""

from __future__ import annotations

import time as timer
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.domains.business_hours.rules import BusinessCalendar
from app.domains.intelligence import contact_time_rules, forecast_rules, score_rules
from bench.intelligence.history import BUSINESS_HOURS, PLANTED_SLOTS, History, SynthLead


def calendar(history: History) -> BusinessCalendar:
    return BusinessCalendar.from_settings(history.timezone, BUSINESS_HOURS, None)


def open_slots(history: History) -> list[int]:
    cal = calendar(history)
    return [
        day * 24 + hour
        for day in range(7)
        if cal.hours[day]
        for hour in range(24)
        if cal.hours[day][0].hour <= hour < cal.hours[day][1].hour
    ]


def contact_rates(history: History, until: datetime | None = None) -> contact_time_rules.ContactRates:
    zone = history.zone
    pairs = (
        (contact_time_rules.hour_of_week(at, zone), answered)
        for at, answered, _source in history.calls()
        if until is None or at < until
    )
    calls, answered = contact_time_rules.tally(pairs)
    return contact_time_rules.smooth(calls, answered)


def slot_precision(history: History) -> tuple[float, list[int]]:
    """Share of the top three open hours of week that are planted ones."""
    top = contact_time_rules.top_slots(contact_rates(history), open_slots(history))
    return sum(1 for s in top if s in PLANTED_SLOTS) / len(top), top


@dataclass
class ScoreQuality:
    auc: float
    brier: float
    base_rate: float
    train_leads: int
    test_leads: int
    fit_seconds: float
    model: score_rules.ScoreModel


def split(history: History, held_out_fraction: float = 0.25) -> tuple[list[SynthLead], list[SynthLead]]:
    """Mature leads (90 days of outcome seen by the history's end), oldest for training."""
    end = datetime.combine(forecast_rules.add_months(history.start, history.months), datetime.min.time(), UTC)
    mature = [
        lead for lead in history.leads if lead.created_at <= end - timedelta(days=score_rules.CONVERSION_DAYS)
    ]
    cut = int(len(mature) * (1 - held_out_fraction))
    return mature[:cut], mature[cut:]


def score_quality(history: History) -> ScoreQuality:
    train, test = split(history)
    rows = [score_rules.feature_vector(lead.facts()) for lead in train]
    labels = [int(lead.converted_within()) for lead in train]
    started = timer.perf_counter()
    model = score_rules.fit(rows, labels, version="bench")
    fit_seconds = timer.perf_counter() - started
    truth = [int(lead.converted_within()) for lead in test]
    predicted = [score_rules.score(model, lead.facts()).probability for lead in test]
    return ScoreQuality(
        auc=score_rules.auc(truth, predicted),
        brier=score_rules.brier(truth, predicted),
        base_rate=sum(truth) / len(truth),
        train_leads=len(train),
        test_leads=len(test),
        fit_seconds=fit_seconds,
        model=model,
    )


def timelines(history: History) -> list[forecast_rules.Timeline]:
    return [
        forecast_rules.Timeline(
            created_at=lead.created_at,
            stages=tuple(lead.stages),
            converted_at=lead.converted_at,
            closed_at=lead.converted_at or lead.lost_at,
        )
        for lead in history.leads
    ]


def actual_conversions(history: History, month: str) -> int:
    return sum(
        1
        for lead in history.leads
        if lead.converted_at and forecast_rules.month_key(lead.converted_at.date()) == month
    )


def forecast_mape(
    history: History, origins: int = 6, months: int = 3
) -> tuple[float, list[tuple[str, float, int]]]:
    """MAPE over the held-out months of several forecast origins (the history's last months)."""
    last_origin = forecast_rules.add_months(history.start, history.months - months)
    actual, predicted, rows = [], [], []
    paths = timelines(history)
    for back in range(origins - 1, -1, -1):
        origin = forecast_rules.add_months(last_origin, -back)
        for month in forecast_rules.forecast_from(paths, origin, months):
            truth = actual_conversions(history, month.month)
            actual.append(truth)
            predicted.append(month.expected)
            rows.append((month.month, month.expected, truth))
    return forecast_rules.mape(actual, predicted), rows
