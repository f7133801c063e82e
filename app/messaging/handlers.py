"""The messaging domain's registrations: its contact policy guards every send to a lead."""

from app.messaging import at_send
from app.notifications import service as notifications

# Asked by the notifications worker just before a message to a lead goes to the provider.
notifications.on_send(at_send.guard)
