"""The automation domain's registrations: its job kinds, step executors and event consumers."""

from app.automation import (
    actions,  # noqa: F401 - executors: create_task, notify, assign, suggest
    outreach,  # noqa: F401 - executors: send_email, send_sms (through the contact policy)
    sequences,  # noqa: F401 - executors: sequence_step, enroll_sequence
    service,
    steps,  # noqa: F401 - the automation.step job kind
    stops,  # noqa: F401 - consumers: unenroll and cancel outreach on reply, conversion, loss, opt-out
)

service.register_consumers()  # every trigger's events are evaluated against the clinic's rules
