"""The booking page's settings endpoint (the pages themselves are app/booking_page/)."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.booking_page import schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("booking_page_settings", "Booking page: the family's own booking page and its settings")


@blp.route("/booking-page/settings")
class BookingPageSettings(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.BookingPageSettingsOut)
    @inject
    def get(self, *, uow, actor, now, settings):
        """The clinic's booking page address, the origins that may embed it and the change cut-off."""
        return service.settings_answer(uow, actor.clinic_id, now, settings.public_base_url)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.BookingPageSettingsIn)
    @blp.response(200, schemas.BookingPageSettingsOut)
    @inject
    def put(self, body, *, uow, actor, now, settings):
        """Change the origins that may embed the page and the change cut-off (the fields given)."""
        service.update_settings(session=uow, clinic_id=actor.clinic_id, changes=body, now=now)
        return service.settings_answer(uow, actor.clinic_id, now, settings.public_base_url)
