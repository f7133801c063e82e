"""The lead score: features of a lead and its early activity, a fitted logistic model applied by
hand (a dot product: scoring needs no scikit-learn object, only the stored coefficients), and
the measures of a model (AUC, Brier). Pure: no I/O, no clock, no database."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.domains.leads import rules as lead_rules

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
    (a worker beside the web and other workers) its threads wait on each other, and the fit takes
    longer than on one thread (docs/performance.md, "Intelligence").
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
