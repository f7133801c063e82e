"""Notification sweeps that beat calls: settle sends a dead worker left behind; queue daily digests.

Delivery itself has no task of its own: it is the `notification.deliver` job kind, run by
`scheduling.run_job` on the notifications queue (the send happens after the claim commits).
"""

from celery import shared_task

from app.domains.outbound.worker import attempts, reconcile
from app.domains.tasks.alerts import digest
from app.platform.app_db import get_db
from app.platform.db import database_now


@shared_task(name="notifications.recover_stuck_sends")
def recover_stuck_sends() -> int:
    db = get_db()
    with db.unit_of_work() as session:
        return attempts.recover_stuck_sends(session=session, now=database_now(db), settings=db.settings)


@shared_task(name="notifications.reconcile_unknown_sms")
def reconcile_unknown_sms() -> int:
    db = get_db()
    return reconcile.reconcile_unknown_sms(db=db, now=database_now(db), settings=db.settings)


@shared_task(name="notifications.send_digests")
def send_digests() -> int:
    db = get_db()
    with db.unit_of_work() as session:
        return digest.send_due_digests(session=session, now=database_now(db), settings=db.settings)
