"""The automation domain's registrations: its job kind, rule executors, event consumers and clinic setup."""

from app.auth import service as auth
from app.automation import orphans, processing, rules, service, steps
from app.automation.executors import actions, outreach
from app.events import consumers as events
from app.leads import listing as lead_listing
from app.scheduling import registry

# A rule's step, due now or later, runs as a ledger job.
registry.register(steps.STEP_KIND, steps.run_step_job, queue="realtime")

# Rule executors: action type -> the function that carries out a step of that type.
steps.register_executor("create_task", actions.create_task)
steps.register_executor("notify", actions.notify)
steps.register_executor("assign", actions.assign)
steps.register_executor("suggest", actions.suggest)
steps.register_executor("update_stage", actions.update_stage)
steps.register_executor("send_email", outreach.send_email)  # through the contact policy
steps.register_executor("send_sms", outreach.send_sms)

# Every trigger's events are evaluated against the clinic's rules.
for trigger in rules.TRIGGERS:
    events.on(trigger, processing.process_event)

# A new clinic gets the default rules.
auth.on_clinic_created(service.seed_default_rules)

# The lead list's next_step=none: open leads with no next step planned (the orphans).
lead_listing.add_list_filter("next_step", orphans.conditions)
