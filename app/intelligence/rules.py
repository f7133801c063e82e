"""The math of follow-up intelligence. Pure: no I/O, no clock, no database.

- contact times: answered-call rates by local hour of week, Beta-smoothed toward a wider rate;
- lead score: features of a lead and its early activity, a fitted logistic model applied by hand
  (a dot product: scoring needs no scikit-learn object, only the stored coefficients);
- next best action: one recommendation with its reason, from the lead's state;
- reply sentiment: a lexicon label (VADER) for English text, `unknown` otherwise;
- conversion forecast: pipeline stage-to-conversion rates plus a seasonal baseline.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from app.business_hours.rules import BusinessCalendar
from app.leads import rules as lead_rules

# --- contact times --------------------------------------------------------------------------------

HOURS_OF_WEEK = 7 * 24
# Pseudo-calls of the prior: a slot with 20 calls is about half its own rate, half the wider rate.
PRIOR_STRENGTH = 20.0
# A source gets its own table once it has this many calls; below, the clinic's table stands for it.
MIN_SOURCE_CALLS = 300
SLOTS_SHOWN = 3
SEARCH_DAYS = 7


def hour_of_week(moment: datetime, zone) -> int:
    """0 = Monday 00:00-01:00 local, 167 = Sunday 23:00-24:00."""
    local = moment.astimezone(zone)
    return local.weekday() * 24 + local.hour


@dataclass(frozen=True)
class ContactRates:
    """Smoothed answer rates for each hour of the week, with the calls each rests on."""

    rates: tuple[float, ...]
    calls: tuple[int, ...]
    answered: tuple[int, ...]
    overall: float
    scope: str  # "clinic", "source" or "prior" (no calls at all)

    def rate(self, slot: int) -> float:
        return self.rates[slot]


def tally(calls: Iterable[tuple[int, bool]]) -> tuple[list[int], list[int]]:
    """(calls, answered) per hour of week from (hour_of_week, answered) pairs."""
    return tally_counts((slot, was_answered, 1) for slot, was_answered in calls)


def tally_counts(counts: Iterable[tuple[int, bool, int]]) -> tuple[list[int], list[int]]:
    """(calls, answered) per hour of week from (hour_of_week, answered, how many calls) counts."""
    total, answered = [0] * HOURS_OF_WEEK, [0] * HOURS_OF_WEEK
    for slot, were_answered, calls in counts:
        total[slot] += calls
        answered[slot] += calls if were_answered else 0
    return total, answered


def smooth(
    calls: Sequence[int],
    answered: Sequence[int],
    prior: Sequence[float] | float | None = None,
    strength: float = PRIOR_STRENGTH,
    scope: str = "clinic",
) -> ContactRates:
    """Beta-smoothed rates: (answered + k*p) / (calls + k), with p the prior rate of the slot.

    Without a prior, p is the table's own overall rate (Laplace-smoothed, so an empty table is 0.5).
    """
    n, a = sum(calls), sum(answered)
    overall = (a + 1.0) / (n + 2.0)
    if prior is None:
        prior = overall
    priors = [prior] * HOURS_OF_WEEK if isinstance(prior, int | float) else list(prior)
    rates = tuple((answered[s] + strength * priors[s]) / (calls[s] + strength) for s in range(HOURS_OF_WEEK))
    return ContactRates(
        rates=rates,
        calls=tuple(calls),
        answered=tuple(answered),
        overall=overall,
        scope=scope if n else "prior",
    )


def top_slots(rates: ContactRates, allowed: Iterable[int], count: int = SLOTS_SHOWN) -> list[int]:
    """The `count` allowed hours of week with the highest rates (ties: the better-sampled first)."""
    return sorted(allowed, key=lambda s: (-rates.rates[s], -rates.calls[s], s))[:count]


@dataclass(frozen=True)
class Slot:
    """One upcoming hour to call: its start (UTC), local hour of week, rate and sample size."""

    starts_at: datetime
    ends_at: datetime
    hour_of_week: int
    rate: float
    calls: int


def is_open_at(calendar: BusinessCalendar, moment: datetime) -> bool:
    window = calendar.window(moment.astimezone(calendar.zone).date())
    return window is not None and window[0] <= moment < window[1]


def open_hours(calendar: BusinessCalendar, start: datetime, days: int = SEARCH_DAYS) -> list[Slot]:
    """Each open hour from `start` over `days` days (the current hour from `start` on), rate-less."""
    zone = calendar.zone
    out = []
    local_start = start.astimezone(zone)
    for offset in range(days + 1):
        window = calendar.window(local_start.date() + timedelta(days=offset))
        if window is None:
            continue
        opens, closes = window
        cursor = opens.replace(minute=0, second=0, microsecond=0)
        while cursor < closes:
            # Whole local hours; a window opening at 08:30 gives 08:30-09:00 first.
            begin, end = max(cursor, opens), min(cursor + timedelta(hours=1), closes)
            begin = max(begin, start)
            if begin < end and begin < start + timedelta(days=days):
                slot = cursor.weekday() * 24 + cursor.hour
                out.append(Slot(begin.astimezone(UTC), end.astimezone(UTC), slot, 0.0, 0))
            cursor += timedelta(hours=1)
    return out


def best_upcoming(
    rates: ContactRates, calendar: BusinessCalendar, start: datetime, count: int = SLOTS_SHOWN
) -> list[Slot]:
    """The `count` best open hours of the next week, best first (ties: the sooner)."""
    candidates = open_hours(calendar, start)
    ranked = sorted(candidates, key=lambda s: (-rates.rates[s.hour_of_week], s.starts_at))
    seen, picked = set(), []
    for slot in ranked:
        if slot.hour_of_week in seen:  # the same hour next week is not another choice
            continue
        seen.add(slot.hour_of_week)
        picked.append(
            Slot(
                slot.starts_at,
                slot.ends_at,
                slot.hour_of_week,
                rates.rates[slot.hour_of_week],
                rates.calls[slot.hour_of_week],
            )
        )
        if len(picked) == count:
            break
    return picked


def best_within(
    rates: ContactRates, calendar: BusinessCalendar, earliest: datetime, window: timedelta
) -> datetime | None:
    """The start of the best open hour between `earliest` and `earliest + window` (None: none open).

    Ties go to the sooner hour, so a clinic without call history keeps its first open moment.
    """
    days = max(1, math.ceil(window.total_seconds() / 86400))
    hours = [s for s in open_hours(calendar, earliest, days) if s.starts_at <= earliest + window]
    if not hours:
        return None
    best = min(hours, key=lambda s: (-rates.rates[s.hour_of_week], s.starts_at))
    return best.starts_at


# --- lead score -----------------------------------------------------------------------------------

CONVERSION_DAYS = 90  # the label: converted within this many days of capture
EARLY_DAYS = 7  # the features: activity within this many days of capture
SOURCE_CATEGORIES = (
    "DOCTOR_REFERRAL",
    "PATIENT_REFERRAL",
    "WEB_ORGANIC",
    "WEB_PAID",
    "WEB_SOCIAL",
    "PRINT_AD",
    "COMMUNITY_EVENT",
    "SCHOOL_SCREENING",
    "WALK_IN",
    "OTHER",
)
TREATMENTS = ("BRACES_METAL", "BRACES_CLEAR", "INVISALIGN", "RETAINER", "SECOND_OPINION", "GENERAL_INQUIRY")
AGE_GROUPS = (*lead_rules.AGE_GROUPS, "unknown")
FEATURES = (
    *(f"source:{c}" for c in SOURCE_CATEGORIES),
    *(f"treatment:{t}" for t in TREATMENTS),
    *(f"age:{g}" for g in AGE_GROUPS),
    "response:within_1h",
    "response:within_24h",
    "response:none",
    "response_hours_log",
    "attempts",
    "contacts",
    "contacted",
)
# How a factor reads to a coordinator.
FACTOR_LABELS = {
    **{f"source:{c}": f"source {c.replace('_', ' ').lower()}" for c in SOURCE_CATEGORIES},
    **{f"treatment:{t}": f"interest in {t.replace('_', ' ').lower()}" for t in TREATMENTS},
    "age:child": "patient is a child",
    "age:teen": "patient is a teenager",
    "age:adult": "patient is an adult",
    "age:unknown": "patient's age unknown",
    "response:within_1h": "first response within an hour",
    "response:within_24h": "first response within a day",
    "response:none": "no response yet",
    "response_hours_log": "time to first response",
    "attempts": "unanswered attempts",
    "contacts": "two-way contacts",
    "contacted": "reached at least once",
}


@dataclass(frozen=True)
class LeadFacts:
    """What the score reads of one lead, as of its early window (or now, if younger)."""

    source_category: str | None
    treatments: tuple[str, ...]
    age_group: str | None  # the patient's at capture (the lead's patient_age_group); None: unknown
    response_hours: float | None  # capture to first outbound reach-out; None: none yet
    attempts: int
    contacts: int


_POSITIONS = {name: position for position, name in enumerate(FEATURES)}


def feature_vector(facts: LeadFacts) -> list[float]:
    """The lead as numbers, in FEATURES order."""
    x = [0.0] * len(FEATURES)

    def put(name: str, value: float = 1.0) -> None:
        x[_POSITIONS[name]] = value

    category = facts.source_category if facts.source_category in SOURCE_CATEGORIES else "OTHER"
    put(f"source:{category}")
    for treatment in facts.treatments:
        if f"treatment:{treatment}" in _POSITIONS:
            put(f"treatment:{treatment}")
    put(f"age:{facts.age_group if facts.age_group in AGE_GROUPS else 'unknown'}")
    hours = facts.response_hours
    if hours is None:
        put("response:none")
        put("response_hours_log", math.log1p(EARLY_DAYS * 24))
    else:
        hours = max(0.0, hours)
        put("response:within_1h", 1.0 if hours <= 1 else 0.0)
        put("response:within_24h", 1.0 if hours <= 24 else 0.0)
        put("response_hours_log", math.log1p(min(hours, EARLY_DAYS * 24)))
    # Counts saturate: the tenth unanswered call says little more than the fifth.
    put("attempts", math.log1p(min(facts.attempts, 10)))
    put("contacts", math.log1p(min(facts.contacts, 10)))
    put("contacted", 1.0 if facts.contacts else 0.0)
    return x


@dataclass(frozen=True)
class ScoreModel:
    """A fitted logistic model as plain numbers (stored as JSON; no pickles)."""

    version: str
    features: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float
    means: tuple[float, ...]  # the training set's feature means: factors are relative to them

    def as_json(self) -> dict:
        return {
            "features": list(self.features),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
            "means": list(self.means),
        }

    @classmethod
    def from_json(cls, version: str, data: Mapping) -> ScoreModel:
        return cls(
            version=version,
            features=tuple(data["features"]),
            coefficients=tuple(float(c) for c in data["coefficients"]),
            intercept=float(data["intercept"]),
            means=tuple(float(m) for m in data["means"]),
        )


@dataclass(frozen=True)
class Score:
    probability: float
    factors: list[dict] = field(default_factory=list)


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def score(model: ScoreModel, facts: LeadFacts, top: int = 3) -> Score:
    """P(conversion) and the `top` factors that move it most from the average lead's."""
    x = _aligned(model, feature_vector(facts))
    z = model.intercept + sum(c * v for c, v in zip(model.coefficients, x, strict=True))
    contributions = [
        (c * (v - m), name)
        for c, v, m, name in zip(model.coefficients, x, model.means, model.features, strict=True)
    ]
    ranked = sorted((item for item in contributions if abs(item[0]) > 1e-6), key=lambda i: -abs(i[0]))
    factors = [
        {
            "feature": name,
            "label": FACTOR_LABELS.get(name, name),
            "effect": "raises" if weight > 0 else "lowers",
            "weight": round(weight, 3),
        }
        for weight, name in ranked[:top]
    ]
    return Score(probability=sigmoid(z), factors=factors)


def _aligned(model: ScoreModel, values: list[float]) -> list[float]:
    """The vector in the model's feature order (a model trained on an older FEATURES list still runs)."""
    if model.features == FEATURES:
        return values
    by_name = dict(zip(FEATURES, values, strict=True))
    return [by_name.get(name, 0.0) for name in model.features]


def fit(
    rows: Sequence[Sequence[float]], labels: Sequence[int], version: str, regularisation: float = 1.0
) -> ScoreModel:
    """An L2-regularised logistic regression (scikit-learn, lbfgs) over FEATURES rows.

    On one BLAS thread: with 30 columns a thread pool has nothing to share out, and on busy cores
    (a worker beside the web and other workers) its threads wait on each other: measured at 100,000
    leads on 2 shared cores, the fit took 2.4 s with the default two threads and 0.8 s with one.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = np.asarray(rows, dtype=float)
    y = np.asarray(labels, dtype=int)
    if len(set(y.tolist())) < 2:
        raise ValueError("training needs both converted and unconverted leads")
    model = LogisticRegression(C=regularisation, max_iter=500)
    with threadpool_limits(limits=1):
        model.fit(x, y)
    return ScoreModel(
        version=version,
        features=FEATURES,
        coefficients=tuple(float(c) for c in model.coef_[0]),
        intercept=float(model.intercept_[0]),
        means=tuple(float(m) for m in x.mean(axis=0)),
    )


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (the rank statistic, ties counted half)."""
    pairs = sorted(zip(scores, labels, strict=True))
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2  # ranks are 1-based
        rank_sum += mean_rank * sum(label for _, label in pairs[i:j])
        i = j
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def brier(labels: Sequence[int], probabilities: Sequence[float]) -> float:
    return sum((p - y) ** 2 for p, y in zip(probabilities, labels, strict=True)) / len(labels)


# --- next best action -----------------------------------------------------------------------------

CALL_NOW = "call_now"
CALL_AT_BEST_SLOT = "call_at_best_slot"
SEND_BREAKUP_EMAIL = "send_breakup_email"
MOVE_TO_LOST = "move_to_lost"
SCHEDULE_CONSULTATION = "schedule_consultation"
ENROLL_SEQUENCE = "enroll_sequence"
ACTIONS = (
    CALL_NOW,
    CALL_AT_BEST_SLOT,
    SEND_BREAKUP_EMAIL,
    MOVE_TO_LOST,
    SCHEDULE_CONSULTATION,
    ENROLL_SEQUENCE,
)

BREAKUP_AFTER_ATTEMPTS = 3  # the default automation's break-up rule
LOST_AFTER_BREAKUP_DAYS = 7  # no answer a week after the break-up email: let the lead go
SPEED_TO_LEAD = timedelta(hours=1)  # a fresh lead is called at once, whatever the hour's rate
GOOD_ENOUGH = 0.9  # the hour we are in counts as the best when its rate is within 10% of it
LOW_SCORE = 0.15  # below this, a decided-later lead is nurtured by a sequence, not by calls
DECIDING_STAGES = ("consultation_completed", "pending_decision")


@dataclass(frozen=True)
class LeadState:
    """What the next best action reads of a lead (all as of `now`)."""

    is_open: bool
    stage: str
    created_at: datetime
    failed_attempts_in_a_row: int
    contacts: int
    breakup_sent_at: datetime | None
    last_contact_at: datetime | None
    score: float | None
    has_open_task: bool
    do_not_contact: bool = False
    email_allowed: bool = True


@dataclass(frozen=True)
class Action:
    action: str
    reason: str
    at: datetime | None = None

    def as_json(self) -> dict:
        return {"action": self.action, "reason": self.reason, "at": self.at.isoformat() if self.at else None}


def next_best_action(
    state: LeadState, now: datetime, current_rate: float | None, best: Slot | None
) -> Action | None:
    """One recommended action with its reason; None for a closed lead."""
    if not state.is_open:
        return None
    if _breakup_unanswered_for_a_week(state, now):
        days = (now - state.breakup_sent_at).days
        return Action(MOVE_TO_LOST, f"no answer {days} days after the break-up email")
    if state.failed_attempts_in_a_row >= BREAKUP_AFTER_ATTEMPTS and state.breakup_sent_at is None:
        if state.email_allowed and not state.do_not_contact:
            return Action(
                SEND_BREAKUP_EMAIL,
                f"{state.failed_attempts_in_a_row} attempts in a row without an answer",
            )
        return Action(MOVE_TO_LOST, f"{state.failed_attempts_in_a_row} unanswered attempts; no email allowed")
    if state.stage == "contacted" and state.contacts:
        return Action(SCHEDULE_CONSULTATION, "reached, and no consultation booked yet")
    low_score = state.score is not None and state.score < LOW_SCORE
    if state.stage in DECIDING_STAGES and low_score and not state.has_open_task:
        return Action(ENROLL_SEQUENCE, f"undecided with a low score ({state.score:.0%}): nurture by sequence")
    return _call(state, now, current_rate, best)


def _breakup_unanswered_for_a_week(state: LeadState, now: datetime) -> bool:
    sent = state.breakup_sent_at
    if sent is None or (state.last_contact_at is not None and state.last_contact_at >= sent):
        return False
    return now - sent >= timedelta(days=LOST_AFTER_BREAKUP_DAYS)


def _call(state: LeadState, now: datetime, current_rate: float | None, best: Slot | None) -> Action:
    if now - state.created_at <= SPEED_TO_LEAD and state.contacts == 0:
        return Action(CALL_NOW, "new lead: the first hour decides most conversions", now)
    if best is None:
        return Action(CALL_NOW, "no open hours known: call when you can", now)
    if current_rate is not None and current_rate >= GOOD_ENOUGH * best.rate:
        return Action(CALL_NOW, f"this hour answers {current_rate:.0%} of calls, near the week's best", now)
    return Action(
        CALL_AT_BEST_SLOT,
        f"{best.rate:.0%} of calls are answered then ({best.calls} calls), against "
        f"{(current_rate or 0):.0%} now",
        best.starts_at,
    )


# --- reply sentiment ------------------------------------------------------------------------------

POSITIVE, NEUTRAL, NEGATIVE, UNKNOWN = "positive", "neutral", "negative", "unknown"
SENTIMENTS = (POSITIVE, NEUTRAL, NEGATIVE, UNKNOWN)
# VADER's own recommended thresholds on the compound score.
COMPOUND_POSITIVE, COMPOUND_NEGATIVE = 0.05, -0.05
MIN_LETTERS_FOR_LANGUAGE = 20  # shorter text: too little to tell a language; read it as English


def sentiment_label(compound: float) -> str:
    if compound >= COMPOUND_POSITIVE:
        return POSITIVE
    if compound <= COMPOUND_NEGATIVE:
        return NEGATIVE
    return NEUTRAL


def letters(text: str) -> int:
    return sum(1 for ch in text if ch.isalpha())


# --- conversion forecast --------------------------------------------------------------------------


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


def forecast(
    *,
    open_by_stage: Mapping[str, int],
    stage_rates: Mapping[str, Sequence[float]],
    capture_rates: Sequence[float],
    monthly_leads: float,
    seasonal: Mapping[int, float],
    first_month: date,
    months: int = 3,
) -> list[MonthForecast]:
    """Expected conversions per month from `first_month` on.

    The pipeline: open leads of each stage x that stage's rate of converting m months later.
    The seasonal baseline: leads not captured yet (the recent monthly volume x the calendar month's
    seasonal factor) x the rate of a new lead converting in its month of capture, the next, ...
    """
    out = []
    for m in range(months):
        month = add_months(first_month, m)
        from_pipeline = sum(
            count * _lag(stage_rates.get(stage, ()), m) for stage, count in open_by_stage.items()
        )
        from_new = 0.0
        for captured in range(m + 1):  # captured in month `captured`, converting in month m
            volume = monthly_leads * seasonal.get(add_months(first_month, captured).month, 1.0)
            from_new += volume * _lag(capture_rates, m - captured)
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
    return forecast(
        open_by_stage=open_by_stage,
        stage_rates=stage_month_rates(snapshots, months),
        capture_rates=monthly_rates(captured, months),
        monthly_leads=sum(recent) / len(recent),
        seasonal=seasonal_factors(monthly),
        first_month=first_month,
        months=months,
    )
