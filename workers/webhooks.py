"""Webhook tasks: the beat sweep that settles deliveries a dead worker left `sending`."""

from celery import shared_task

from app.domains.webhooks import posting
from app.platform.app_db import get_db
from app.platform.db import database_now


@shared_task(name="webhooks.recover_stuck_deliveries")
def recover_stuck_deliveries() -> int:
    return posting.recover_stuck_deliveries(db=get_db(), now=database_now(get_db()))
