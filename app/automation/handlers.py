"""The automation domain's registrations: its job kinds, step executors and event consumers."""

from app.automation import (
    actions,  # noqa: F401 - executors: create_task, notify, assign, suggest
    service,
    steps,  # noqa: F401 - the automation.step job kind
)

service.register_consumers()  # every trigger's events are evaluated against the clinic's rules
