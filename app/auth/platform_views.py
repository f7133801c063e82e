"""The platform operator's API: clinics are created here (or with `followup clinics create`), outside
every clinic's roles (Authorization: Bearer $FOLLOWUP_PLATFORM_TOKEN)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView

from app import clock
from app.access import platform_only
from app.api import make_blueprint
from app.app_db import unit_of_work
from app.auth import onboarding, schemas

blp = make_blueprint("platform", "The platform operator: new clinics and their first admin")


@blp.route("/platform/clinics")
class PlatformClinics(MethodView):
    @platform_only
    @blp.arguments(schemas.PlatformClinicIn)
    @blp.response(201, schemas.PlatformClinicOut)
    @blp.alt_response(409, description="The admin's email is taken (`admin_email`)")
    def post(self, body):
        """Create a clinic and its first clinic_admin; answers the admin's one-time setup link."""
        with unit_of_work() as session:
            return onboarding.onboard_clinic(
                session=session,
                name=body["name"],
                timezone=body["timezone"],
                admin_email=body["admin_email"],
                admin_name=body.get("admin_name"),
                settings=current_app.config["SETTINGS"],
                now=clock.now(),
            )
