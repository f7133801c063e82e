"""Lead CSV export at 100,000 leads: streamed, memory stays bounded whatever the row count.

`make bench BENCH_ARGS=exports` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh
database). Seeds N leads (five coordinators), then reads GET /api/leads/export through the app's
test client without buffering: once filtered to one coordinator (N/5 rows) and once whole (N rows).
For each: rows, seconds, the peak growth of the process's resident memory while the response was
read, and tracemalloc's peak of Python allocations. For contrast, the same rows loaded at once
(`.all()`), which is what a non-streamed export would hold. Seconds are measured under tracemalloc,
which slows Python several times: they compare runs here, they are not an export rate. Option: --leads=N.
"""

from __future__ import annotations

import gc
import time
import tracemalloc

import sqlalchemy as sa

from app.domains.leads.export import CONTACT_COLUMNS
from app.domains.leads.models import Lead
from app.platform import phi_policy
from bench.bulk import PHI_KEY, SECRET, _flag, _seed
from bench.common import bench_app, print_table


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _export(client, headers: dict, query: str) -> list:
    gc.collect()
    base = _rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    resp = client.get(f"/api/leads/export{query}", headers=headers, buffered=False)
    assert resp.status_code == 200, resp.status_code
    lines, peak_rss = 0, base
    for chunks, chunk in enumerate(resp.response, start=1):
        lines += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
        if chunks % 20 == 0:
            peak_rss = max(peak_rss, _rss_mb())
    resp.close()
    seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = max(peak_rss, _rss_mb())
    return [f"streamed {query or '(all)'}", lines - 1, seconds, peak_rss - base, traced_peak / 2**20]


def _loaded_at_once(app) -> list:
    """The contrast: every row of the export held in memory at once."""
    db = app.extensions["followup.db"]
    gc.collect()
    base = _rss_mb()
    tracemalloc.start()
    started = time.perf_counter()
    with app.app_context(), db.unit_of_work() as session:
        columns = [getattr(Lead, name) for name in CONTACT_COLUMNS + phi_policy.LEAD_FIELDS]
        rows = session.execute(sa.select(*columns).order_by(Lead.id)).all()
        peak_rss = _rss_mb()
        count = len(rows)
        del rows
    seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return ["loaded at once (contrast)", count, seconds, peak_rss - base, traced_peak / 2**20]


def main(flags: list[str]) -> None:
    n_leads = _flag(flags, "leads", 100_000)
    with bench_app(secret_key=SECRET, phi_encryption_key=PHI_KEY) as app:
        dialect = app.extensions["followup.db"].dialect
        _, admin_id, token = _seed(app, n_leads)
        headers = {"Authorization": f"Bearer {token}"}
        client = app.test_client()
        one_coordinator = admin_id + 1
        rows = [
            _export(client, headers, f"?assigned_to={one_coordinator}"),
            _export(client, headers, ""),
            _loaded_at_once(app),
        ]
    print_table(
        f"Lead CSV export, {n_leads:,} leads ({dialect}; shared, noisy 2-core machine)",
        ["export", "rows", "seconds (traced)", "peak RSS growth MB", "tracemalloc peak MB"],
        rows,
    )
