"""A user's in-app notifications."""

from flask.views import MethodView

from app import clock
from app.api import make_blueprint, set_item_count
from app.auth.permissions import ANY, current_actor, requires
from app.db import unit_of_work
from app.errors import Forbidden
from app.notifications import schemas, service

blp = make_blueprint("notifications", "In-app notifications and delivery")


def _user_id() -> int:
    actor = current_actor()
    if actor.user_id is None:
        raise Forbidden("notifications belong to users; an API key has none")
    return actor.user_id


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @requires(ANY)
    @blp.arguments(schemas.InboxArgs, location="query")
    @blp.response(200, schemas.InboxItemOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """My in-app notifications: unread first, newest first."""
        with unit_of_work() as session:
            items, total = service.inbox(
                session=session,
                user_id=_user_id(),
                unread_only=args["unread"],
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return items


@blp.route("/me/notifications/<int:notification_id>/read")
class ReadNotification(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.InboxItemOut)
    def post(self, notification_id):
        """Mark one of my notifications read."""
        with unit_of_work() as session:
            return service.mark_read(
                session=session, user_id=_user_id(), notification_id=notification_id, now=clock.now()
            )
