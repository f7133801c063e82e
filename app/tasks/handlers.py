"""The tasks domain's registrations: its job kinds on the ledger and its event consumers."""

from app.auth import service as auth
from app.events import consumers as events
from app.events import service as event_types
from app.scheduling import registry
from app.tasks import escalation, service
from app.tasks.alerts import handover, overdue, timers

# The timers' handlers write only in their transaction (an in-app notification, the task or lead, an
# audit row; email goes out through a delivery job of its own): rows due together run in batches.
TIMER_BATCH = 50
registry.register(timers.REMINDER, timers.send_task_reminder, queue="realtime", batch=TIMER_BATCH)
registry.register(timers.ESCALATION, escalation.escalate_overdue_task, queue="realtime", batch=TIMER_BATCH)
registry.register(
    escalation.LEAD_ESCALATION,
    escalation.escalate_uncontacted_lead,
    queue="realtime",
    batch=TIMER_BATCH,
)
# No contact within hours of capture: the lead's escalation job is scheduled when it is created.
events.on(event_types.LEAD_CREATED, escalation.schedule_no_contact_escalation)
# A converted or lost lead needs no more follow-up: its open tasks (and their timers) are cancelled.
events.on(event_types.LEAD_CONVERTED, service.close_tasks_of_closed_lead)
events.on(event_types.LEAD_LOST, service.close_tasks_of_closed_lead)
# An overdue task is told to its assignee at once.
events.on(event_types.TASK_OVERDUE, overdue.tell_overdue)
# A user gone inactive or out of office: their open tasks follow their leads (after assignment's hand-over).
auth.on_user_unavailable(handover.hand_over_open_tasks)
