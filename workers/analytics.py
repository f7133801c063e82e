"""Analytics sweeps that beat calls: the clinic admins' daily / weekly summary email; the monthly
counts' rows of changes folded."""

from datetime import datetime

from celery import shared_task

from app.domains.analytics import month_changes, summary
from app.platform.app_db import get_db
from app.platform.db import database_now


@shared_task(name="analytics.send_summaries")
def send_summaries(now: str | None = None) -> int:
    """`now` (ISO 8601, aware) stands in for the clock: a re-run for a given moment, and tests."""
    db = get_db()
    moment = datetime.fromisoformat(now) if now else database_now(db)
    with db.unit_of_work() as session:
        return summary.send_due_summaries(
            session=session,
            now=moment,
            hour=db.settings.digest_hour,
            window_hours=db.settings.digest_window_hours,
        )


@shared_task(name="analytics.fold_months")
def fold_months() -> int:
    with get_db().unit_of_work() as session:
        return month_changes.fold(session)
