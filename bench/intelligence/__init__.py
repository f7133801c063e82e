"""Follow-up intelligence against planted truths, and its cost at 100,000 leads.

`make bench BENCH_ARGS=intelligence` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh
database). Flags: `--leads=N` (the history for quality, default 40,000 over 30 months), `--scale=N`
(the cost measures, default 100,000 leads), `--seed=N`, `--no-db` (pure math only).

Quality, on a generated history (bench/intelligence/history.py) with held-out data:
- top-3 contact hours = the planted ones (weekdays 12-13 and 17-18): precision, target >= 2/3;
- lead score on held-out leads (the newest quarter of mature leads): AUC (target >= 0.75), Brier
  score next to the base rate's (a constant prediction);
- forecast MAPE on held-out months: six forecast origins, three months each, each made from what
  was known at its origin.
Cost at `--scale` leads of one clinic: the nightly training (read + features + fit) and scoring
(one lead: its reads, features, score, factors and next best action), through the service on a
database, and the pure math alone.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.auth import service as auth
from app.domains.auth.models import User
from app.domains.intelligence import score_rules, scoring, service
from app.domains.leads.models import Lead, LeadSource
from app.platform.db import allocate_ids, insert_rows, row_values
from bench.common import bench_app, median, percentile, print_table
from bench.intelligence import evaluate
from bench.intelligence.history import BUSINESS_HOURS, TIMEZONE, History, generate

SECRET = "bench-secret-0123456789-abcdefghijklmn"
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
BATCH = 10_000
SCORING_SAMPLE = 500


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1].replace("_", ""))
    return default


def main(flags: list[str]) -> None:
    import sklearn.linear_model  # noqa: F401 - imported once up front: its import is not training time

    seed = _flag(flags, "seed", 19)
    n_quality = _flag(flags, "leads", 40_000)
    n_scale = _flag(flags, "scale", 100_000)
    started = time.perf_counter()
    history = generate(seed=seed, leads=n_quality, months=30)
    generated = time.perf_counter() - started
    quality_rows = _quality(history)
    print_table(
        f"Intelligence vs planted truths ({n_quality:,} generated leads over 30 months, seed {seed}; "
        f"generated in {generated:.1f} s)",
        ["measure", "value", "target", "held-out data"],
        quality_rows,
    )
    scale_history = generate(seed=seed + 1, leads=n_scale, months=24)
    rows = _pure_cost(scale_history)
    if "--no-db" not in flags:
        rows += _database_cost(scale_history)
    print_table(
        f"Cost at {n_scale:,} leads of one clinic (2 shared cores, noisy: other work runs beside it)",
        ["measure", "value", "target"],
        rows,
    )


def _quality(history: History) -> list[list]:
    precision, top = evaluate.slot_precision(history)
    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    top_text = ", ".join(f"{days[s // 24]} {s % 24:02d}:00" for s in top)
    score = evaluate.score_quality(history)
    error, forecasts = evaluate.forecast_mape(history, origins=6)
    base_brier = score.base_rate * (1 - score.base_rate)
    return [
        ["top-3 slot precision", f"{precision:.2f} ({top_text})", ">= 0.67", "all calls"],
        ["lead score AUC", f"{score.auc:.3f}", ">= 0.75", f"{score.test_leads:,} newest mature leads"],
        ["lead score Brier", f"{score.brier:.4f}", f"< {base_brier:.4f} (base rate)", "same"],
        ["conversion base rate", f"{score.base_rate:.3f}", "", "same"],
        ["forecast MAPE", f"{error:.1%}", "reported", f"{len(forecasts)} origin-months"],
        ["training (pure fit)", f"{score.fit_seconds:.2f} s", "", f"{score.train_leads:,} leads"],
    ]


def _pure_cost(history: History) -> list[list]:
    started = time.perf_counter()
    rows = [score_rules.feature_vector(lead.facts()) for lead in history.leads]
    labels = [int(lead.converted_within()) for lead in history.leads]
    featured = time.perf_counter() - started
    started = time.perf_counter()
    model = score_rules.fit(rows, labels, version="bench")
    fitted = time.perf_counter() - started
    facts = [lead.facts() for lead in history.leads]
    started = time.perf_counter()
    for item in facts:
        score_rules.score(model, item)
    per_lead_ms = (time.perf_counter() - started) * 1000 / len(facts)
    return [
        ["features, pure (s)", round(featured, 2), ""],
        ["fit, scikit-learn (s)", round(fitted, 2), ""],
        ["score + factors, pure (ms/lead)", round(per_lead_ms, 4), "<= 1"],
    ]


def _database_cost(history: History) -> list[list]:
    with bench_app(secret_key=SECRET, phi_encryption_key=PHI_KEY) as app:
        db = app.extensions["followup.db"]
        dialect = db.dialect
        started = time.perf_counter()
        clinic_id, night = _load(app, history)
        loaded = time.perf_counter() - started
        with app.app_context(), db.unit_of_work() as session:
            started = time.perf_counter()
            record = scoring.train(session=session, clinic_id=clinic_id, now=night)
            trained = time.perf_counter() - started
        with app.app_context(), db.unit_of_work() as session:
            started = time.perf_counter()
            result = service.nightly_for_clinic(session=session, clinic_id=clinic_id, now=night)
            nightly = time.perf_counter() - started
        with app.app_context(), db.unit_of_work() as session:
            started = time.perf_counter()
            rescored = scoring.rescore_open_leads(session=session, clinic_id=clinic_id, now=night)
            rescoring_ms = (time.perf_counter() - started) * 1000 / max(1, rescored)
        latencies = _scoring_latencies(app, clinic_id, night)
    return [
        [f"load {len(history.leads):,} leads + calls ({dialect}, s)", round(loaded, 1), ""],
        [f"train: read + features + fit ({dialect}, s)", round(trained, 2), "<= 60"],
        [f"  on {record.samples:,} mature leads", "", ""],
        [f"nightly run: tallies + train + rescore {result['scored']:,} open (s)", round(nightly, 2), ""],
        [f"nightly re-scoring, per open lead, with reads ({dialect}, ms)", round(rescoring_ms, 2), "<= 1"],
        [f"one lead's event re-score, alone ({dialect}) p50 (ms)", round(median(latencies), 2), ""],
        [f"one lead's event re-score, alone ({dialect}) p95 (ms)", round(percentile(latencies, 95), 2), ""],
    ]


def _scoring_latencies(app, clinic_id: int, now: datetime) -> list[float]:
    """One lead's whole scoring through the service: its reads, score, factors, next action."""
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        ids = list(
            session.scalars(
                sa.select(Lead.id)
                .where(Lead.clinic_id == clinic_id, Lead.status == "ACTIVE")
                .order_by(Lead.id)
            )
        )
    sample = random.Random(5).sample(ids, min(SCORING_SAMPLE, len(ids)))
    latencies = []
    with app.app_context(), db.unit_of_work() as session:
        view = scoring.clinic_view(session=session, clinic_id=clinic_id)  # as a batch of re-scorings reads it
        for lead_id in sample:
            lead = session.get(Lead, lead_id)
            started = time.perf_counter()
            scoring.score_leads(session=session, leads=[lead], now=now, view=view)
            latencies.append((time.perf_counter() - started) * 1000)
        session.rollback()
    return latencies


def _load(app, history: History) -> tuple[int, datetime]:
    """The history as one clinic's rows, written in bulk (ids reserved up front, multi-row INSERTs:
    app.platform.db.insert_rows); returns (clinic id, the night after)."""
    db = app.extensions["followup.db"]
    end = max(lead.created_at for lead in history.leads)
    night = end + timedelta(days=1)
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session,
            hooks=session.database.wiring.auth,
            name="Bench Ortho",
            now=night,
            timezone=TIMEZONE,
            business_hours=BUSINESS_HOURS,
        )
        owner = User(
            clinic_id=clinic.id,
            email="owner@example.com",
            name="Owner",
            role="treatment_coordinator",
            password_hash="-",
            active=True,
            out_of_office=False,
            created_at=night,
            updated_at=night,
        )
        session.add(owner)
        session.flush()
        sources = dict(
            session.execute(
                sa.select(LeadSource.category, LeadSource.id).where(LeadSource.clinic_id == clinic.id)
            ).all()
        )
        clinic_id, owner_id = clinic.id, owner.id
    with app.app_context(), db.unit_of_work() as session:
        for offset in range(0, len(history.leads), BATCH):
            batch = history.leads[offset : offset + BATCH]
            ids = allocate_ids(session, {Lead: len(batch)})[Lead]
            leads = [
                _lead(lead_id, clinic_id, owner_id, sources, lead, night)
                for lead_id, lead in zip(ids, batch, strict=True)
            ]
            insert_rows(session, Lead, leads)
            calls = [
                row
                for lead_id, lead in zip(ids, batch, strict=True)
                for row in _calls(clinic_id, lead_id, lead)
            ]
            insert_rows(session, LeadActivity, calls)
    with app.app_context(), db.unit_of_work() as session:
        session.execute(sa.text("ANALYZE"))  # fresh statistics, as autovacuum would give a live database
    return clinic_id, night


def _lead(lead_id: int, clinic_id: int, owner_id: int, sources: dict, lead, night: datetime) -> dict:
    converted = lead.converted_at if lead.converted_at and lead.converted_at < night else None
    lost = lead.lost_at if not converted and lead.lost_at and lead.lost_at < night else None
    status = "CONVERTED" if converted else ("LOST" if lost else "ACTIVE")
    return row_values(
        Lead,
        id=lead_id,
        clinic_id=clinic_id,
        status=status,
        pipeline_stage={"CONVERTED": "treatment_accepted", "LOST": "lost"}.get(status, lead.stages[-1][0]),
        stage_entered_at=converted or lost or lead.stages[-1][1],
        first_name="F",
        last_name="L",
        source_id=sources[lead.source_category],
        treatment_interest=list(lead.treatments),
        patient_dob=lead.patient_dob,
        patient_age_group=lead.age_group,  # as the lead service stores it with the DOB
        assigned_to_id=owner_id,
        converted_at=converted,
        lost_at=lost,
        created_at=lead.created_at,
        updated_at=lead.created_at,
        created_by="bench",
        updated_by="bench",
    )


def _calls(clinic_id: int, lead_id: int, lead) -> list[dict]:
    return [
        row_values(
            LeadActivity,
            clinic_id=clinic_id,
            lead_id=lead_id,
            type="PHONE_CALL",
            direction="OUTBOUND",
            outcome="spoke" if call.answered else "no_answer",
            occurred_at=call.at,
            created_at=call.at,
            actor="bench",
            replied=False,
        )
        for call in lead.calls
    ]
