"""The leads domain's registration: a new clinic gets its default lead sources."""

from app.auth import service as auth
from app.leads import service

auth.on_clinic_created(service.seed_default_sources)
