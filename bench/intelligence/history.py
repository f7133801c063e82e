"""A synthetic clinic history with planted truths, for bench/intelligence and tests/intelligence.

Planted:
- referrals (doctor or patient) convert 3x as often as other leads;
- a first response within an hour doubles conversion;
- calls are answered most at 12:00-13:00 and 17:00-18:00 local on weekdays (PLANTED_SLOTS);
- lead volume is seasonal (SEASON), so a forecast has a season to find.
Leads that will convert also answer more of their calls (engagement), so early contacts carry signal.
Everything is drawn from one `random.Random(seed)`: the same seed gives the same history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.domains.intelligence import contact_time_rules, forecast_rules, score_rules
from app.domains.leads import rules as lead_rules

TIMEZONE = "America/New_York"
BUSINESS_HOURS = {day: ["08:00", "19:00"] for day in ("mon", "tue", "wed", "thu", "fri")} | {
    "sat": None,
    "sun": None,
}
OPEN_HOURS = range(8, 19)
PLANTED_SLOTS = frozenset(day * 24 + hour for day in range(5) for hour in (12, 17))
ANSWER_RATE_PLANTED, ANSWER_RATE_OTHER = 0.55, 0.2
BASE_CONVERSION = 0.07
REFERRAL_MULTIPLIER, FAST_RESPONSE_MULTIPLIER = 3.0, 2.0
REFERRALS = ("DOCTOR_REFERRAL", "PATIENT_REFERRAL")
SOURCE_WEIGHTS = {
    "DOCTOR_REFERRAL": 8,
    "PATIENT_REFERRAL": 10,
    "WEB_ORGANIC": 20,
    "WEB_PAID": 22,
    "WEB_SOCIAL": 15,
    "PRINT_AD": 5,
    "COMMUNITY_EVENT": 5,
    "SCHOOL_SCREENING": 5,
    "WALK_IN": 5,
    "OTHER": 5,
}
# Lead volume by calendar month, relative (back-to-school and New Year peaks, a December lull).
SEASON = {1: 1.2, 2: 1.0, 3: 1.0, 4: 0.9, 5: 0.9, 6: 1.0, 7: 1.1, 8: 1.4, 9: 1.3, 10: 0.9, 11: 0.7, 12: 0.6}


@dataclass
class Call:
    at: datetime
    answered: bool


@dataclass
class SynthLead:
    index: int
    created_at: datetime
    source_category: str
    treatments: tuple[str, ...]
    patient_dob: date | None
    calls: list[Call] = field(default_factory=list)
    converted_at: datetime | None = None
    lost_at: datetime | None = None
    stages: list[tuple[str, datetime]] = field(default_factory=list)  # (stage, entered_at), in order

    @property
    def age_group(self) -> str | None:
        """As the lead stores it (patient_age_group): the age group at capture."""
        return lead_rules.age_group(self.patient_dob, self.created_at)

    @property
    def response_hours(self) -> float | None:
        return (self.calls[0].at - self.created_at).total_seconds() / 3600 if self.calls else None

    def facts(self, as_of: datetime | None = None) -> score_rules.LeadFacts:
        """The score's view of the lead: its first EARLY_DAYS (or up to `as_of`, if sooner)."""
        cutoff = self.created_at + timedelta(days=score_rules.EARLY_DAYS)
        if as_of is not None:
            cutoff = min(cutoff, as_of)
        early = [c for c in self.calls if c.at <= cutoff]
        return score_rules.LeadFacts(
            source_category=self.source_category,
            treatments=self.treatments,
            age_group=self.age_group,
            response_hours=(early[0].at - self.created_at).total_seconds() / 3600 if early else None,
            attempts=sum(1 for c in early if not c.answered),
            contacts=sum(1 for c in early if c.answered),
        )

    def converted_within(self, days: int = score_rules.CONVERSION_DAYS) -> bool:
        return self.converted_at is not None and self.converted_at - self.created_at <= timedelta(days=days)


@dataclass
class History:
    leads: list[SynthLead]
    start: date
    months: int
    timezone: str = TIMEZONE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def calls(self) -> list[tuple[datetime, bool, str]]:
        return [(c.at, c.answered, lead.source_category) for lead in self.leads for c in lead.calls]


def _month_starts(start: date, months: int) -> list[date]:
    return [forecast_rules.add_months(start, m) for m in range(months)]


def _business_moment(rng: random.Random, day: date, zone: ZoneInfo) -> datetime:
    """A random moment inside opening hours of `day` (moved to the next weekday when closed)."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    minute = rng.randrange(len(OPEN_HOURS) * 60)
    local = datetime.combine(day, time(OPEN_HOURS[0]), zone) + timedelta(minutes=minute)
    return local.astimezone(UTC)


def _answer_rate(moment: datetime, zone: ZoneInfo, engaged: bool) -> float:
    rate = (
        ANSWER_RATE_PLANTED
        if contact_time_rules.hour_of_week(moment, zone) in PLANTED_SLOTS
        else ANSWER_RATE_OTHER
    )
    return min(0.95, rate * (1.8 if engaged else 0.85))


def _conversion_probability(source: str, fast: bool, treatments: tuple[str, ...], age: float | None) -> float:
    p = BASE_CONVERSION
    p *= REFERRAL_MULTIPLIER if source in REFERRALS else 1.0
    p *= FAST_RESPONSE_MULTIPLIER if fast else 1.0
    p *= 1.2 if "INVISALIGN" in treatments else 1.0
    p *= 1.15 if age is not None and age < 18 else 1.0
    return min(p, 0.95)


def generate(*, seed: int, leads: int, start: date = date(2024, 1, 1), months: int = 24) -> History:
    """`leads` leads captured over `months` months from `start`, with their calls and outcomes."""
    rng = random.Random(seed)
    zone = ZoneInfo(TIMEZONE)
    month_starts = _month_starts(start, months)
    weights = [SEASON[m.month] for m in month_starts]
    sources, source_weights = list(SOURCE_WEIGHTS), list(SOURCE_WEIGHTS.values())
    out = []
    for index in range(leads):
        month = rng.choices(month_starts, weights)[0]
        next_month = forecast_rules.add_months(month, 1)
        day = month + timedelta(days=rng.randrange((next_month - month).days))
        created = _business_moment(rng, day, zone)
        source = rng.choices(sources, source_weights)[0]
        treatments = tuple(rng.sample(score_rules.TREATMENTS, rng.choice((1, 1, 1, 2))))
        age = rng.choice((None, rng.uniform(8, 13), rng.uniform(13, 18), rng.uniform(18, 60)))
        dob = None if age is None else (created - timedelta(days=age * 365.25)).date()
        fast = rng.random() < 0.4
        converts = rng.random() < _conversion_probability(source, fast, treatments, age)
        lead = SynthLead(index, created, source, treatments, dob)
        _add_calls(rng, lead, fast, converts, zone)
        _add_outcome(rng, lead, converts)
        out.append(lead)
    out.sort(key=lambda lead: lead.created_at)
    return History(leads=out, start=start, months=months)


def _add_calls(rng: random.Random, lead: SynthLead, fast: bool, engaged: bool, zone: ZoneInfo) -> None:
    first = lead.created_at + timedelta(minutes=rng.uniform(2, 55) if fast else rng.uniform(65, 60 * 72))
    moments = [first]
    for _ in range(rng.randrange(1, 6)):
        later = lead.created_at.date() + timedelta(days=rng.randrange(0, score_rules.EARLY_DAYS + 3))
        moments.append(_business_moment(rng, later, zone))
    for at in sorted(moments):
        if at < first:
            continue
        lead.calls.append(Call(at, rng.random() < _answer_rate(at, zone, engaged)))


def _add_outcome(rng: random.Random, lead: SynthLead, converts: bool) -> None:
    lead.stages.append(("new_lead", lead.created_at))
    reached = next((c.at for c in lead.calls if c.answered), None)
    if reached is not None:
        lead.stages.append(("contacted", reached))
    if converts:
        lead.converted_at = lead.created_at + timedelta(days=rng.uniform(10, 85))
        consult = lead.created_at + (lead.converted_at - lead.created_at) * rng.uniform(0.3, 0.7)
        lead.stages.append(("consultation_completed", max(consult, reached or consult)))
        return
    if reached is not None and rng.random() < 0.35:
        lead.stages.append(("consultation_completed", reached + timedelta(days=rng.uniform(3, 20))))
    lead.lost_at = lead.stages[-1][1] + timedelta(days=rng.uniform(10, 60))
