"""When a delivery runs, and who wakes whom: bulk work stepping aside while a new lead's
processing waits, and the wake-up a drainer leaves for its kind's rows not due yet."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from app.platform.scheduling import claim_queries
from app.platform.scheduling.dispatch import Message, message_for, subject_of
from app.platform.scheduling.service import set_wake_flag

log = logging.getLogger(__name__)


def yielded_to_realtime(*, db, job_id: int, now: datetime, batch: Sequence[int] = ()) -> bool:
    """Whether the row's delivery stepped aside: its kind yields, a new lead's processing has waited
    longer than `realtime_behind_seconds` (its worker shares the machine with this one), and the row
    is not yet `yield_at_most_seconds` past due. It is then sent again `yield_again_seconds` later,
    with the delivery's `batch` (the other rows it brought), all still dispatched and with no attempt
    spent (the redispatch sweep covers a lost message)."""
    settings, kinds = db.settings, db.job_kinds.realtime_drained_kinds()
    if not kinds:
        return False
    params = {"job_id": job_id, "realtime_kinds": kinds, "now": now}
    rows = claim_queries.run_alone(db, claim_queries.ROW_AND_REALTIME_LAG, params)
    if not rows:
        return False  # final, or unknown: the normal run says so
    row, spec = rows[0], db.job_kinds.kind_of(rows[0].kind)
    if spec is None or not spec.yields or not _behind(row.realtime_waiting_since, now, settings):
        return False
    if row.due_at < now - timedelta(seconds=settings.yield_at_most_seconds):
        return False
    again = now + timedelta(seconds=settings.yield_again_seconds)
    subject = None if batch else subject_of(row.subject_type, row.subject_id)
    db.dispatcher.publish([Message(row.id, row.queue, again, row.kind, subject, batch=tuple(batch))])
    log.info(
        "job %s (%s) steps aside: a new lead's processing has waited since %s",
        row.id,
        row.kind,
        row.realtime_waiting_since,
    )
    return True


def realtime_is_behind(session, *, now: datetime, settings) -> bool:
    """Whether a new lead's processing has waited longer than `realtime_behind_seconds`: bulk work
    that runs in steps (a campaign's batch, window by window) asks between them, in the transaction
    of its next step, and hands the rest back while it is (app/domains/outbound/worker/batches.py)."""
    kinds = session.database.job_kinds.realtime_drained_kinds()
    if not kinds:
        return False
    params = {"realtime_kinds": kinds, "now": now}
    return _behind(session.execute(claim_queries.REALTIME_WAITING_SINCE, params).scalar(), now, settings)


def _behind(waiting_since: datetime | None, now: datetime, settings) -> bool:
    return waiting_since is not None and waiting_since < now - timedelta(
        seconds=settings.realtime_behind_seconds
    )


def wake_for_later(*, db, kind: str, now: datetime) -> None:
    """A drainer that found nothing due leaves a wake-up for the kind's next row not due yet (a
    re-scoring is due a moment after its events): the rows committed while the flag was out
    published nothing, so without it they would wait for the redispatch sweep. Unless a wake-up is
    out already (another commit's), which runs them with the rows due by then.

    The wake-up is for `background_delay_seconds` from now at the earliest, not for the next row's
    own time: rows of such a kind come a few milliseconds apart while leads arrive, and a wake-up
    for each would make every one a delivery, a claim and a drainer's looks of its own. One wake-up
    then serves the rows of that moment together (their lag stays under twice the delay)."""
    settings = db.settings
    params = {
        "of_kind": kind,
        "until": now + timedelta(seconds=settings.job_early_tolerance_seconds),
        "b_horizon_end": now + timedelta(seconds=settings.schedule_horizon_seconds),
    }
    try:
        later = claim_queries.run_alone(db, claim_queries.NEXT_LATER_OF_KIND, params)
        if not later:
            return
        message = message_for(later[0], now)
        eta = max(message.eta or now, now + timedelta(seconds=settings.background_delay_seconds))
        if set_wake_flag(db.redis, kind, eta):
            db.dispatcher.publish([dataclasses.replace(message, eta=eta)])
    except Exception:
        log.exception("could not leave a wake-up for the next %s row; the redispatch sweep sends it", kind)


_EVER = datetime(1970, 1, 1, tzinfo=UTC)


def hand_back(*, db, kind: str, now: datetime) -> None:
    """A drainer out of time hands its kind's due rows to a new delivery: a message for the oldest,
    at once. Whichever worker takes it drains on (a row taken meanwhile is not claimed twice); the
    wake-up flag stays out, as the drain goes on."""
    params = {
        "of_kind": kind,
        "until": _EVER,
        "b_horizon_end": now + timedelta(seconds=db.settings.job_early_tolerance_seconds),
    }
    try:
        due = claim_queries.run_alone(db, claim_queries.NEXT_LATER_OF_KIND, params)
        if due:
            db.dispatcher.publish([dataclasses.replace(message_for(due[0], now), eta=None)])
    except Exception:
        log.exception("could not hand the due %s rows on; the redispatch sweep sends them", kind)
