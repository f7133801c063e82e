"""Importing this module wires every domain: models into Base.metadata, handlers into registries."""

from app.activities import models as activities_models  # noqa: F401
from app.analytics import monthly as analytics_monthly  # noqa: F401 - monthly lead counts kept on flush
from app.assignment import models as assignment_models  # noqa: F401
from app.assignment import service as assignment_service  # noqa: F401 - on_user_unavailable: hand over leads
from app.audit import models as audit_models  # noqa: F401
from app.auth import models as auth_models  # noqa: F401
from app.automation import handlers as automation_handlers  # noqa: F401 - rules, steps, sequences
from app.automation import models as automation_models  # noqa: F401
from app.bulk import models as bulk_models  # noqa: F401
from app.bulk import service as bulk_service  # noqa: F401 - the bulk.tasks_chunk job kind
from app.bulk import task_actions as bulk_task_actions  # noqa: F401 - the bulk.task_actions_chunk job kind
from app.calendar_feed import models as calendar_models  # noqa: F401
from app.events import consumers as event_consumers  # noqa: F401 - the events.process job kind
from app.events import models as events_models  # noqa: F401
from app.idempotency import models as idempotency_models  # noqa: F401
from app.intake import imports as intake_imports  # noqa: F401 - the leads.import_chunk job kind
from app.intelligence import handlers as intelligence_handlers  # noqa: F401 - re-score on lead events
from app.intelligence import models as intelligence_models  # noqa: F401
from app.leads import models as leads_models  # noqa: F401
from app.leads import service as leads_service  # noqa: F401 - on_clinic_created: default lead sources
from app.messaging import models as messaging_models  # noqa: F401
from app.notifications import handlers as notification_handlers  # noqa: F401 - notification.deliver
from app.notifications import models as notification_models  # noqa: F401
from app.ops import models as ops_models  # noqa: F401
from app.pipeline import models as pipeline_models  # noqa: F401
from app.pipeline import service as pipeline_service  # noqa: F401 - on_clinic_created: default stages
from app.scheduling import models as scheduling_models  # noqa: F401
from app.tasks import handlers as task_handlers  # noqa: F401 - reminders, escalation, speed-to-lead
from app.tasks import models as task_models  # noqa: F401
from app.webhooks import handlers as webhook_handlers  # noqa: F401 - webhook.deliver, event forwarding
from app.webhooks import models as webhook_models  # noqa: F401
