"""Webhook subscription endpoints (clinic admins) and their delivery history."""

from flask import current_app
from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import make_blueprint, set_item_count
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.webhooks import redeliver, schemas, service

blp = make_blueprint("webhooks", "Outbound webhooks for integrators")


@blp.route("/webhooks")
class Webhooks(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookOut(many=True))
    def get(self):
        """The clinic's webhook subscriptions."""
        with unit_of_work() as session:
            return service.list_subscriptions(session=session, clinic_id=current_actor().clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.WebhookIn)
    @blp.response(201, schemas.WebhookCreatedOut)
    @blp.alt_response(409, description="The clinic has its most subscriptions already")
    def post(self, body):
        """Subscribe a URL to events; the answer holds the signing secret, shown only this once."""
        with unit_of_work() as session:
            return service.create_subscription(
                session=session,
                actor=current_actor(),
                data=body,
                now=clock.now(),
                settings=current_app.config["SETTINGS"],
            )


@blp.route("/webhooks/<int:webhook_id>")
class WebhookById(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(204)
    def delete(self, webhook_id):
        """Stop a subscription (pending deliveries are dropped)."""
        with unit_of_work() as session:
            service.delete_subscription(
                session=session, actor=current_actor(), subscription_id=webhook_id, now=clock.now()
            )


@blp.route("/webhooks/<int:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookDeliveryOut(many=True))
    @blp.paginate()
    def get(self, webhook_id, pagination_parameters):
        """A subscription's deliveries, newest first: status, attempts, last error, next attempt."""
        with unit_of_work() as session:
            rows, total = service.list_deliveries(
                session=session,
                clinic_id=current_actor().clinic_id,
                subscription_id=webhook_id,
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return rows


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
class RedeliverWebhook(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookDeliveryOut)
    @blp.alt_response(409, description="The delivery is still on its way, or its subscription was deleted")
    def post(self, webhook_id, delivery_id):
        """Send a failed (or delivered) delivery again now: the same payload and Idempotency-Key,
        attempts reset (audited)."""
        actor = current_actor()
        with unit_of_work() as session:
            return redeliver.redeliver(
                session=session,
                clinic_id=actor.clinic_id,
                subscription_id=webhook_id,
                delivery_id=delivery_id,
                actor=actor.ref,
                now=clock.now(),
            )
