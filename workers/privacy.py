"""Privacy tasks: the daily erasure of closed leads past their clinic's retention."""

from celery import shared_task

from app.domains.privacy import retention
from app.platform.app_db import get_db
from app.platform.db import database_now


@shared_task(name="privacy.erase_expired_leads")
def erase_expired_leads() -> int:
    return retention.erase_expired_leads(db=get_db(), now=database_now(get_db()))
