"""A user's in-app notifications and preferences; the clinic's outgoing messages and their retry."""

from flask import request
from flask.views import MethodView

from app.domains.auth import signing
from app.domains.outbound import admin, inbox, preferences, receipts, schemas
from app.platform.access import public, requires
from app.platform.api import make_blueprint, set_item_count
from app.platform.api.injection import inject
from app.platform.db import PageRequest
from app.platform.errors import Forbidden
from app.platform.roles import ANY, Actor, Permission

blp = make_blueprint("notifications", "In-app notifications and delivery")


def _user_id(actor: Actor) -> int:
    if actor.user_id is None:
        raise Forbidden("notifications belong to users; an API key has none")
    return actor.user_id


@blp.route("/me/notifications")
class MyNotifications(MethodView):
    @requires(ANY)
    @blp.arguments(schemas.InboxArgs, location="query")
    @blp.response(200, schemas.InboxItemOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor):
        """My in-app notifications: unread first, newest first."""
        items, total = inbox.inbox(
            session=uow,
            user_id=_user_id(actor),
            unread_only=args["unread"],
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return items


@blp.route("/me/notifications/<int:notification_id>/read")
class ReadNotification(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.InboxItemOut)
    @inject
    def post(self, notification_id, *, uow, actor, now):
        """Mark one of my notifications read."""
        return inbox.mark_read(session=uow, user_id=_user_id(actor), notification_id=notification_id, now=now)


@blp.route("/me/notification-preferences")
class MyPreferences(MethodView):
    @requires(ANY)
    @blp.response(200, schemas.PreferencesOut)
    @inject
    def get(self, *, uow, actor):
        """My channels per kind (reminder, escalation, new_lead, new_task, digest), quiet hours, SMS."""
        return preferences.get_preferences(session=uow, user_id=_user_id(actor))

    @requires(ANY)
    @blp.arguments(schemas.PreferencesIn)
    @blp.response(200, schemas.PreferencesOut)
    @inject
    def put(self, body, *, uow, actor, now):
        """Choose channels per kind (in-app is always on) and quiet hours; email/SMS wait for their end."""
        return preferences.put_preferences(
            session=uow, user_id=_user_id(actor), clinic_id=actor.clinic_id, data=body, now=now
        )


@blp.route("/notifications")
class Deliveries(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.DeliveryQueryArgs, location="query")
    @blp.response(200, schemas.DeliveryOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor):
        """The clinic's outgoing email and SMS, newest first: `?status=failed&channel=email&since=...`."""
        items, total = admin.list_deliveries(
            session=uow,
            clinic_id=actor.clinic_id,
            status=args.get("status"),
            channel=args.get("channel"),
            since=args.get("since"),
            paging=PageRequest.of(pagination_parameters),
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
    @inject
    def post(self, body, notification_id, *, uow, actor, now):
        """Send a failed or dead message again now, attempts reset (audited). An SMS whose outcome is
        unknown may already have reached the lead: it needs {"confirm_may_duplicate": true}."""
        return admin.retry_notification(
            session=uow,
            notification_id=notification_id,
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            now=now,
            confirm_may_duplicate=bool((body or {}).get("confirm_may_duplicate")),
        )


@blp.route("/notifications/retry")
class RetryDeliveries(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RetryFilterIn)
    @blp.response(200, schemas.RetryCountOut)
    @inject
    def post(self, body, *, uow, actor, now):
        """Requeue every failed/dead message matching status, channel and since (each audited)."""
        count = admin.retry_notifications(
            session=uow,
            clinic_id=actor.clinic_id,
            actor=actor.ref,
            matching=admin.RetryFilter(
                status=body.get("status"), channel=body.get("channel"), since=body.get("since")
            ),
            now=now,
        )
        return {"requeued": count}


@blp.route("/providers/twilio/status")
class TwilioStatusCallback(MethodView):
    @public("signed by Twilio: X-Twilio-Signature with the account's auth token (SMS_TOKEN)")
    @blp.response(200)
    @blp.alt_response(401, description="Missing or bad X-Twilio-Signature")
    @blp.alt_response(404, description="Twilio webhooks are not configured (SMS_TOKEN)")
    @blp.alt_response(422, description="MessageSid or MessageStatus is missing")
    @inject
    def post(self, *, uow, now, settings):
        """Twilio's status callbacks (form: MessageSid, MessageStatus, ErrorCode): delivered, or
        undelivered / failed with the provider's error, on the notification sent with that SID."""
        form = signing.twilio_form(settings=settings, request=request)
        return receipts.apply_status(session=uow, form=form, now=now, notification_hint=request.args.get("n"))
