"""Importing this module wires every domain: models into Base.metadata, then the one handler map
(app/handlers.py): job kinds, event consumers, rule executors and clinic / user hooks.
"""

# What runs when something happens: the one handler map (event consumers, job kinds, rule
# executors, clinic and user hooks), installed as it is imported.
import app.handlers  # noqa: F401
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
