"""Calendar endpoints: rotate my feed's token; the feed itself, behind its secret token."""

from flask import Response
from flask.views import MethodView

from app import clock
from app.access import current_actor, public, requires
from app.api import make_blueprint
from app.app_db import unit_of_work
from app.auth.roles import ANY
from app.calendar_feed import schemas, service

blp = make_blueprint("calendar", "Open tasks as an iCalendar feed")


@blp.route("/me/calendar-token")
class CalendarToken(MethodView):
    @requires(ANY)
    @blp.response(201, schemas.CalendarTokenOut)
    def post(self):
        """A new secret URL for my calendar feed (the previous one stops working)."""
        with unit_of_work() as session:
            return service.rotate_token(session=session, actor=current_actor(), now=clock.now())


@blp.route("/calendar/<token>.ics")
class CalendarFeed(MethodView):
    @public("the secret token in the URL is the credential (calendar apps cannot send headers)")
    @blp.response(200, content_type="text/calendar")
    def get(self, token):
        """My open tasks as iCalendar."""
        with unit_of_work() as session:
            body = service.feed_for_token(session=session, token=token, now=clock.now())
        return Response(body, mimetype="text/calendar")
