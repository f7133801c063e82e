"""The conversion forecast: pipeline stage-to-conversion rates plus a seasonal baseline. Pure: no
I/O, no clock, no database."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


@dataclass(frozen=True)
class MonthForecast:
    month: str  # YYYY-MM
    expected: float
    from_pipeline: float
    from_new_leads: float


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_gap(start: datetime | date, end: datetime | date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def monthly_rates(gaps: Iterable[int | None], horizon: int = 3) -> tuple[float, ...]:
    """From a group's outcomes (months until conversion, None: not converted): the share converting
    0, 1, .. horizon-1 months later."""
    counts, total = [0] * horizon, 0
    for gap in gaps:
        total += 1
        if gap is not None and 0 <= gap < horizon:
            counts[gap] += 1
    return tuple(c / total for c in counts) if total else tuple([0.0] * horizon)


def stage_month_rates(
    snapshots: Iterable[tuple[str, int | None]], horizon: int = 3
) -> dict[str, tuple[float, ...]]:
    """Stage-to-conversion rates: of the leads open in a stage at a month's start (one snapshot
    each), the share converting in that month, the next, ... (from (stage, months until conversion))."""
    grouped: dict[str, list[int | None]] = {}
    for stage, gap in snapshots:
        grouped.setdefault(stage, []).append(gap)
    return {stage: monthly_rates(gaps, horizon) for stage, gaps in grouped.items()}


def seasonal_factors(monthly_leads: Mapping[str, int]) -> dict[int, float]:
    """Calendar month → its lead volume relative to the average month (absent: 1.0).

    Shrunk halfway toward 1: one year of history says a season, not its exact size.
    """
    by_month: dict[int, list[int]] = {}
    for key, count in monthly_leads.items():
        by_month.setdefault(int(key[5:7]), []).append(count)
    if len(by_month) < 12:
        return {}  # less than a year: no season can be told from a trend
    mean = sum(sum(v) / len(v) for v in by_month.values()) / len(by_month)
    if mean <= 0:
        return {}
    return {m: 0.5 + 0.5 * (sum(v) / len(v)) / mean for m, v in by_month.items()}


@dataclass(frozen=True)
class Basis:
    """What a forecast is made from: the open leads of each stage, each stage's rates of converting
    0, 1, .. months later, a new lead's rates (from its month of capture), the recent monthly lead
    volume and the seasonal factors (calendar month → factor; absent: 1.0)."""

    open_by_stage: Mapping[str, int]
    stage_rates: Mapping[str, Sequence[float]]
    capture_rates: Sequence[float]
    monthly_leads: float
    seasonal: Mapping[int, float]


def forecast(basis: Basis, *, first_month: date, months: int = 3) -> list[MonthForecast]:
    """Expected conversions per month from `first_month` on.

    The pipeline: open leads of each stage x that stage's rate of converting m months later.
    The seasonal baseline: leads not captured yet (the recent monthly volume x the calendar month's
    seasonal factor) x the rate of a new lead converting in its month of capture, the next, ...
    """
    out = []
    for m in range(months):
        month = add_months(first_month, m)
        from_pipeline = sum(
            count * _lag(basis.stage_rates.get(stage, ()), m) for stage, count in basis.open_by_stage.items()
        )
        from_new = 0.0
        for captured in range(m + 1):  # captured in month `captured`, converting in month m
            volume = basis.monthly_leads * basis.seasonal.get(add_months(first_month, captured).month, 1.0)
            from_new += volume * _lag(basis.capture_rates, m - captured)
        out.append(
            MonthForecast(
                month=month_key(month),
                expected=round(from_pipeline + from_new, 2),
                from_pipeline=round(from_pipeline, 2),
                from_new_leads=round(from_new, 2),
            )
        )
    return out


def _lag(lags: Sequence[float], index: int) -> float:
    return lags[index] if 0 <= index < len(lags) else 0.0


def mape(actual: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean absolute percentage error over the months with any actual conversions."""
    pairs = [(a, p) for a, p in zip(actual, predicted, strict=True) if a]
    if not pairs:
        return float("nan")
    return sum(abs(a - p) / a for a, p in pairs) / len(pairs)


HISTORY_MONTHS = 24  # the forecast learns from this many months before it


@dataclass(frozen=True)
class Timeline:
    """A lead's path for the forecast: capture, the stages it entered, its close."""

    created_at: datetime
    stages: tuple[tuple[str, datetime], ...]  # (stage, entered_at), oldest first; capture's stage first
    converted_at: datetime | None = None
    closed_at: datetime | None = None  # converted, lost or archived

    def stage_at(self, moment: datetime) -> str | None:
        """Its stage at `moment`, or None when it was not open then."""
        if self.created_at >= moment or (self.closed_at is not None and self.closed_at < moment):
            return None
        stage = None
        for name, entered in self.stages:
            if entered < moment:
                stage = name
        return stage


def _start_of(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def forecast_from(timelines: Sequence[Timeline], first_month: date, months: int = 3) -> list[MonthForecast]:
    """The forecast made at the start of `first_month` from what was known then (UTC months)."""
    cutoff = _start_of(first_month)
    snapshots, captured, monthly = [], [], {}
    learned = [add_months(first_month, -back) for back in range(HISTORY_MONTHS, months - 1, -1)]
    for timeline in timelines:
        known_conversion = (
            timeline.converted_at if timeline.converted_at and timeline.converted_at < cutoff else None
        )
        for month in learned:  # a month start whose next `months` months are all in the past
            stage = timeline.stage_at(_start_of(month))
            if stage is not None:
                gap = month_gap(month, known_conversion) if known_conversion else None
                snapshots.append((stage, gap))
        created_month = date(timeline.created_at.year, timeline.created_at.month, 1)
        if cutoff - timedelta(days=HISTORY_MONTHS * 31) <= timeline.created_at < cutoff:
            key = month_key(created_month)
            monthly[key] = monthly.get(key, 0) + 1
            if month_gap(created_month, first_month) >= months:
                captured.append(month_gap(created_month, known_conversion) if known_conversion else None)
    open_by_stage: dict[str, int] = {}
    for timeline in timelines:
        stage = timeline.stage_at(cutoff)
        if stage is not None:
            open_by_stage[stage] = open_by_stage.get(stage, 0) + 1
    recent = [monthly.get(month_key(add_months(first_month, -back)), 0) for back in range(1, 13)]
    basis = Basis(
        open_by_stage=open_by_stage,
        stage_rates=stage_month_rates(snapshots, months),
        capture_rates=monthly_rates(captured, months),
        monthly_leads=sum(recent) / len(recent),
        seasonal=seasonal_factors(monthly),
    )
    return forecast(basis, first_month=first_month, months=months)
