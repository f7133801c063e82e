"""Follow-up response's medians (app/domains/analytics/response.py): found from the message months'
reply-time buckets, then read from the middle bucket alone, they are the plain median of the times
to reply, whatever the range, the buckets and the counts."""

import random
import statistics
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.domains.activities.models import LeadActivity
from app.domains.analytics import figures, month_changes
from app.platform import clock
from tests.leadkit import create_lead, source_ids

TIMES = (  # seconds to the reply: within the minute buckets, on their bounds, in the hour buckets
    [0.5, 59.999, 60.0, 61.0, 119.5, 600.0, 3599.9, 3600.0, 3600.1]
    + [7200.0 * k for k in range(1, 12)]
    + [86400.0 + 13.0] * 7  # many in one bucket
)


def _messages(db, tenant, leads: list[int], now: datetime) -> list[dict]:
    """Automated messages of the two leads over the four months before `now`, by SMS and email, a
    few unanswered; each replied one with a time from TIMES (some drawn twice, so counts are odd and
    even by group). Loaded around the write paths, as a clinic's history would be."""
    rng = random.Random(5)
    rows = []
    for i in range(90):
        sent = now - timedelta(days=rng.uniform(1, 120))
        seconds = None if i % 7 == 0 else rng.choice(TIMES)
        rows.append(
            {
                "clinic_id": tenant.id, "lead_id": leads[i % 2], "type": "SMS" if i % 3 else "EMAIL",
                "direction": "OUTBOUND", "actor": "system", "occurred_at": sent, "created_at": sent,
                "message_channel": "sms" if i % 3 else "email", "replied": seconds is not None,
                "replied_at": None if seconds is None else sent + timedelta(seconds=seconds),
                "reply_seconds": seconds,
            }
        )  # fmt: skip
    with db.engine.begin() as conn:
        conn.execute(sa.insert(LeadActivity), rows)
    return rows


def _expected(rows: list[dict], start: datetime, end: datetime, leads: set[int]) -> dict:
    """{channel: (messages, replied, median hours to reply)} as the definitions say."""
    found = {}
    for channel in ("sms", "email"):
        mine = [
            r for r in rows
            if r["message_channel"] == channel and start <= r["occurred_at"] < end and r["lead_id"] in leads
        ]  # fmt: skip
        times = [r["reply_seconds"] for r in mine if r["replied"]]
        median = figures.num(statistics.median(times) / 3600.0) if times else None  # as shown
        found[channel] = (len(mine), len(times), median)
    return found


def _report(client, tenant, **window) -> dict:
    resp = client.get(
        "/api/leads/analytics/follow-up-response",
        query_string={
            key: value.isoformat() if isinstance(value, datetime) else value for key, value in window.items()
        },
        headers=tenant.headers(),
    )
    assert resp.status_code == 200, resp.get_json()
    return {
        row["name"]: (row["messages"], row["replied"], row["median_hours_to_reply"])
        for row in resp.get_json()["channels"]
    }


def test_each_channels_median_is_the_median_of_its_replies_over_any_range(app, client, db, tenant):
    now = clock.now()
    first_source, second_source, *_ = source_ids(client, tenant).values()
    one, other = (create_lead(client, tenant, source_id=s)["id"] for s in (first_source, second_source))
    rows = _messages(db, tenant, [one, other], now)
    first_of_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    ranges = {
        "whole months and parts": (now - timedelta(days=110), now),
        "within a month": (first_of_month - timedelta(days=20), first_of_month - timedelta(days=5)),
        "from a month's start": (first_of_month - timedelta(days=61), now),
    }
    for folded in (False, True):
        if folded:
            with db.unit_of_work() as session:
                assert month_changes.fold(session) > 0
        for label, (start, end) in ranges.items():
            found = _report(client, tenant, **{"from": start, "to": end})
            expected = _expected(rows, start, end, {one, other})
            assert {c: found[c] for c in expected} == expected, (label, folded)
    start, end = ranges["whole months and parts"]
    narrowed = _report(client, tenant, **{"from": start, "to": end, "source_id": first_source})
    assert {c: narrowed[c] for c in ("sms", "email")} == _expected(rows, start, end, {one})
