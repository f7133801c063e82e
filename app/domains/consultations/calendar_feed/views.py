"""Calendar endpoints: rotate my feed's token; the feed itself, behind its secret token."""

from flask import Response
from flask.views import MethodView

from app.domains.consultations.calendar_feed import schemas, service
from app.platform.access import public, requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import ANY

blp = make_blueprint("calendar", "Open tasks as an iCalendar feed")


@blp.route("/me/calendar-token")
class CalendarToken(MethodView):
    @requires(ANY)
    @blp.response(201, schemas.CalendarTokenOut)
    @blp.alt_response(422, description="Called with an API key: only a user has a calendar")
    @inject
    def post(self, *, uow, actor, now):
        """A new secret URL for my calendar feed (the previous one stops working)."""
        return service.rotate_token(session=uow, actor=actor, now=now)


@blp.route("/calendar/<token>.ics")
class CalendarFeed(MethodView):
    @public("the secret token in the URL is the credential (calendar apps cannot send headers)")
    @blp.response(200, content_type="text/calendar")
    @inject
    def get(self, token, *, uow, now):
        """My open tasks as iCalendar."""
        body = service.feed_for_token(session=uow, token=token, now=now)
        return Response(body, mimetype="text/calendar")
