"""Idempotency-key tasks: the beat sweep that purges expired keys."""

from celery import shared_task

from app.platform.app_db import get_db
from app.platform.db import database_now
from app.platform.idempotency import service


@shared_task(name="idempotency.purge_expired")
def purge_expired() -> int:
    return service.purge_expired_keys(db=get_db(), now=database_now(get_db()))
