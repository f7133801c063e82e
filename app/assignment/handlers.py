"""The assignment domain's registration: a user who becomes unavailable hands over their open leads."""

from app.assignment import service
from app.auth import service as auth

auth.on_user_unavailable(service.hand_over_open_leads)
