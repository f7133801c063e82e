"""The tasks domain's registrations: its job kinds on the ledger and its event consumers."""

from app.events import consumers as events
from app.events import service as event_types
from app.scheduling import registry
from app.tasks import service

registry.register(service.REMINDER, service.send_task_reminder, queue="realtime")
registry.register(service.ESCALATION, service.escalate_overdue_task, queue="realtime")
# A converted or lost lead needs no more follow-up: its open tasks (and their timers) are cancelled.
events.on(event_types.LEAD_CONVERTED, service.close_tasks_of_closed_lead)
events.on(event_types.LEAD_LOST, service.close_tasks_of_closed_lead)
# An overdue task is told to its assignee at once.
events.on(event_types.TASK_OVERDUE, service.tell_overdue)
