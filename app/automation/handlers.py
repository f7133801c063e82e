"""The automation domain's registrations: its job kinds, step executors and event consumers."""

from app.automation import (
    actions,  # noqa: F401 - executors: create_task, notify, assign, suggest
    steps,  # noqa: F401 - the automation.step job kind
)
