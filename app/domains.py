"""Importing this module wires every domain: models into Base.metadata, then each domain's
`handlers.py`: its job kinds, event consumers, rule executors and clinic / user hooks.

What runs when something happens is one grep of app/*/handlers.py.
"""

import importlib

from app.activities import models as activities_models  # noqa: F401
from app.analytics import models as analytics_models  # noqa: F401
from app.assignment import models as assignment_models  # noqa: F401
from app.audit import models as audit_models  # noqa: F401
from app.auth import models as auth_models  # noqa: F401
from app.automation import models as automation_models  # noqa: F401
from app.bulk import models as bulk_models  # noqa: F401
from app.calendar_feed import models as calendar_models  # noqa: F401
from app.events import models as events_models  # noqa: F401
from app.idempotency import models as idempotency_models  # noqa: F401
from app.intake.inbound import models as inbound_models  # noqa: F401
from app.intelligence import models as intelligence_models  # noqa: F401
from app.leads import models as leads_models  # noqa: F401
from app.messaging import models as messaging_models  # noqa: F401
from app.notifications import models as notification_models  # noqa: F401
from app.ops import models as ops_models  # noqa: F401
from app.pipeline import models as pipeline_models  # noqa: F401
from app.privacy import models as privacy_models  # noqa: F401
from app.scheduling import models as scheduling_models  # noqa: F401
from app.sla import models as sla_models  # noqa: F401
from app.tasks import models as task_models  # noqa: F401
from app.webhooks import models as webhook_models  # noqa: F401

# Each domain's registrations, in this order: the order consumers of one event run in, and the
# order a new clinic's setup steps run in (stages before the rules that name them).
HANDLERS = (
    "app.events.handlers",  # events.process: the outbox
    "app.leads.handlers",  # new clinic: default lead sources
    "app.pipeline.handlers",  # new clinic: default stages
    "app.assignment.handlers",  # user unavailable: hand over their leads
    "app.sequences.handlers",  # sequence executors; automatic stops (before the rules they'd cancel)
    "app.automation.handlers",  # rules, steps, executors, automatic stops, default rules
    "app.intelligence.handlers",  # re-score on lead events
    "app.tasks.handlers",  # reminders, escalation, speed-to-lead
    "app.sla.handlers",  # SLA clocks: started at capture, warned, breached, met or cancelled
    "app.webhooks.handlers",  # webhook.deliver, event forwarding
    "app.notifications.handlers",  # notification.deliver
    "app.messaging.handlers",  # the contact policy, checked again as each message to a lead goes
    "app.bulk.handlers",  # bulk chunks
    "app.intake.handlers",  # lead import chunks
    "app.analytics.handlers",  # report summaries and monthly counts, after every other consumer
)
for module in HANDLERS:
    importlib.import_module(module)
