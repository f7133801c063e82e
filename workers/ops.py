"""Ops tasks: the heartbeat proves a worker consumes its queues and can write; the database's
statistics are kept fresh and its dead rows cleared."""

from celery import shared_task

from app.domains.ops import service
from app.platform.app_db import get_db, unit_of_work
from app.platform.db import database_now


@shared_task(name="ops.heartbeat")
def heartbeat(name: str = "worker") -> str:
    now = database_now(get_db())
    with unit_of_work() as session:
        service.record_heartbeat(session=session, name=name, now=now)
    return name


@shared_task(name="ops.refresh_statistics")
def refresh_statistics() -> list[str]:
    return service.refresh_statistics(db=get_db())


@shared_task(name="ops.vacuum_dead_rows")
def vacuum_dead_rows() -> list[str]:
    return service.vacuum_dead_rows(db=get_db())
