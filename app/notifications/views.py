"""A user's in-app notifications and preferences; the clinic's outgoing messages and their retry."""

from flask import current_app, request
from flask.views import MethodView

from app import clock
from app.access import current_actor, public, requires
from app.api import make_blueprint, set_item_count
from app.app_db import unit_of_work
from app.auth import signing
from app.auth.roles import ANY, Permission
from app.errors import Forbidden
from app.notifications import admin, inbox, preferences, receipts, schemas

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
            items, total = inbox.inbox(
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
            return inbox.mark_read(
                session=session, user_id=_user_id(), notification_id=notification_id, now=clock.now()
            )


@blp.route("/me/notification-preferences")
class MyPreferences(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.PreferencesOut)
    def get(self):
        """My channels per kind (reminder, escalation, new_lead, new_task, digest), quiet hours, SMS."""
        with unit_of_work() as session:
            return preferences.get_preferences(session=session, user_id=_user_id())

    @requires(ANY)
    @blp.arguments(schemas.PreferencesIn)
    @blp.response(200, schemas.PreferencesOut)
    def put(self, body):
        """Choose channels per kind (in-app is always on) and quiet hours; email/SMS wait for their end."""
        actor = current_actor()
        with unit_of_work() as session:
            return preferences.put_preferences(
                session=session, user_id=_user_id(), clinic_id=actor.clinic_id, data=body, now=clock.now()
            )


@blp.route("/notifications")
class Deliveries(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.DeliveryQueryArgs, location="query")
    @blp.response(200, schemas.DeliveryOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The clinic's outgoing email and SMS, newest first: `?status=failed&channel=email&since=...`."""
        with unit_of_work() as session:
            items, total = admin.list_deliveries(
                session=session,
                clinic_id=current_actor().clinic_id,
                status=args.get("status"),
                channel=args.get("channel"),
                since=args.get("since"),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return items


@blp.route("/notifications/<int:notification_id>/retry")
class RetryDelivery(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RetryOneIn, required=False)
    @blp.response(200, schemas.DeliveryOut)
    @blp.alt_response(
        409, description="Not failed, dead or unknown; or unknown without confirm_may_duplicate"
    )
    def post(self, body, notification_id):
        """Send a failed or dead message again now, attempts reset (audited). An SMS whose outcome is
        unknown may already have reached the lead: it needs {"confirm_may_duplicate": true}."""
        actor = current_actor()
        with unit_of_work() as session:
            return admin.retry_notification(
                session=session,
                notification_id=notification_id,
                clinic_id=actor.clinic_id,
                actor=actor.ref,
                now=clock.now(),
                confirm_may_duplicate=bool((body or {}).get("confirm_may_duplicate")),
            )


@blp.route("/notifications/retry")
class RetryDeliveries(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RetryFilterIn)
    @blp.response(200, schemas.RetryCountOut)
    def post(self, body):
        """Requeue every failed/dead message matching status, channel and since (each audited)."""
        actor = current_actor()
        with unit_of_work() as session:
            count = admin.retry_notifications(
                session=session,
                clinic_id=actor.clinic_id,
                actor=actor.ref,
                status=body.get("status"),
                channel=body.get("channel"),
                since=body.get("since"),
                now=clock.now(),
            )
        return {"requeued": count}


@blp.route("/providers/twilio/status")
class TwilioStatusCallback(MethodView):
    @public("signed by Twilio: X-Twilio-Signature with the account's auth token (SMS_TOKEN)")
    @blp.response(200)
    @blp.alt_response(401, description="Missing or bad X-Twilio-Signature")
    @blp.alt_response(404, description="Twilio webhooks are not configured (SMS_TOKEN)")
    def post(self):
        """Twilio's status callbacks (form: MessageSid, MessageStatus, ErrorCode): delivered, or
        undelivered / failed with the provider's error, on the notification sent with that SID."""
        form = signing.twilio_form(settings=current_app.config["SETTINGS"], request=request)
        with unit_of_work() as session:
            return receipts.apply_status(
                session=session, form=form, now=clock.now(), notification_hint=request.args.get("n")
            )
