"""Webhook subscription endpoints (clinic admins) and their delivery history."""

from flask.views import MethodView

from app.domains.webhooks import redeliver, schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint, set_item_count
from app.platform.api.injection import inject
from app.platform.db import PageRequest
from app.platform.roles import Permission

blp = make_blueprint("webhooks", "Outbound webhooks for integrators")


@blp.route("/webhooks")
class Webhooks(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's webhook subscriptions."""
        return service.list_subscriptions(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.WebhookIn)
    @blp.response(201, schemas.WebhookCreatedOut)
    @blp.alt_response(409, description="The clinic has its most subscriptions already")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """Subscribe a URL to events; the answer holds the signing secret, shown only this once."""
        return service.create_subscription(
            session=uow,
            actor=actor,
            data=body,
            now=now,
            settings=settings,
        )


@blp.route("/webhooks/<int:webhook_id>")
class WebhookById(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, webhook_id, *, uow, actor, now):
        """Stop a subscription (pending deliveries are dropped)."""
        service.delete_subscription(session=uow, actor=actor, subscription_id=webhook_id, now=now)


@blp.route("/webhooks/<int:webhook_id>/deliveries")
class WebhookDeliveries(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookDeliveryOut(many=True))
    @blp.paginate()
    @inject
    def get(self, webhook_id, pagination_parameters, *, uow, actor):
        """A subscription's deliveries, newest first: status, attempts, last error, next attempt."""
        rows, total = service.list_deliveries(
            session=uow,
            clinic_id=actor.clinic_id,
            subscription_id=webhook_id,
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return rows


@blp.route("/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver")
class RedeliverWebhook(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookDeliveryOut)
    @blp.alt_response(409, description="The delivery is still on its way, or its subscription was deleted")
    @inject
    def post(self, webhook_id, delivery_id, *, uow, actor, now):
        """Send a failed (or delivered) delivery again now: the same payload and Idempotency-Key,
        attempts reset (audited)."""
        return redeliver.redeliver(
            session=uow,
            clinic_id=actor.clinic_id,
            subscription_id=webhook_id,
            delivery_id=delivery_id,
            actor=actor.ref,
            now=now,
        )
