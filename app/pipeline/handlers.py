"""The pipeline domain's registration: a new clinic gets the spec's default stages."""

from app.auth import service as auth
from app.pipeline import service

auth.on_clinic_created(service.seed_default_stages)
