"""Ops tasks: the heartbeat proves a worker consumes the realtime queue and can write."""

from celery import shared_task

from app import clock
from app.db import unit_of_work
from app.ops import service


@shared_task(name="ops.heartbeat")
def heartbeat(name: str = "worker") -> str:
    with unit_of_work() as session:
        service.record_heartbeat(session=session, name=name, now=clock.now())
    return name
