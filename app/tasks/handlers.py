"""The tasks domain's registrations: its job kinds on the ledger and its event consumers."""

from app.scheduling import registry
from app.tasks import service


def register() -> None:
    registry.register(service.REMINDER, service.send_task_reminder, queue="realtime")
    registry.register(service.ESCALATION, service.escalate_overdue_task, queue="realtime")
