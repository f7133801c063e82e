"""The notifications domain's registrations: delivery of outgoing messages is a ledger job kind;
invitations go out by email."""

from app.auth import service as auth
from app.notifications import invitations, outgoing
from app.notifications.worker import attempts, batches
from app.scheduling import registry

# On the notifications queue: a flood of emails never delays reminders on realtime, and ops can give
# it its own worker and rate limit (docs/operations/processes.md).
# Both send after the claim commits and record the outcome in a unit of work of their own: the
# handlers are given the Database (takes_db).
registry.register(outgoing.DELIVER, attempts.claim_delivery, queue="notifications", takes_db=True)
# Many messages queued at once (queue_many) travel in batches: one task per BATCH_SIZE messages.
registry.register(
    outgoing.DELIVER_BATCH, batches.claim_batch, queue="notifications", takes_db=True, yields=True
)

# An invited user gets their password-setup link by email (app/auth/onboarding.py).
auth.on_user_invited(invitations.send_invitation)
