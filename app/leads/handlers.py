"""The leads domain's registration: a new clinic gets its default lead sources."""

from app.auth import service as auth
from app.leads import sources

auth.on_clinic_created(sources.seed_default_sources)
