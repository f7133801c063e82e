"""Meta's Instagram webhook: the subscription handshake (GET) and the signed notifications (POST)."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView

from app.domains.intake.inbound import schemas
from app.domains.intake.instagram import webhook
from app.platform.access import public
from app.platform.api import make_blueprint
from app.platform.api.injection import inject

blp = make_blueprint("instagram_webhook", "Instagram: Meta's webhook for direct messages")


@blp.route("/webhooks/instagram")
class InstagramWebhook(MethodView):
    @public("Meta's subscription handshake: hub.verify_token must be INSTAGRAM_VERIFY_TOKEN")
    @blp.response(200, content_type="text/plain")
    @blp.alt_response(403, description="Not a subscription request, or a wrong hub.verify_token")
    @inject
    def get(self, *, settings):
        """Meta's subscription handshake (hub.mode=subscribe, hub.verify_token, hub.challenge):
        answers hub.challenge as text when the verify token is the deployment's."""
        answer = webhook.challenge(settings=settings, args=request.args.to_dict())
        return Response(answer, status=200, mimetype="text/plain")

    @public("signed by Meta: X-Hub-Signature-256, HMAC-SHA256 of the body with INSTAGRAM_APP_SECRET")
    @blp.response(200, schemas.ReceivedOut)
    @blp.alt_response(400, description="A signed body that is not JSON")
    @blp.alt_response(403, description="Missing or bad X-Hub-Signature-256")
    @blp.alt_response(404, description="Instagram webhooks are not configured (INSTAGRAM_APP_SECRET)")
    @inject
    def post(self, *, uow, now, settings):
        """Meta's notification of Instagram messaging events (entry[].messaging[]): each DM to a
        connected account is recorded once per message id (mid): on the lead of its sender, or on a
        new lead (source "Instagram") for someone the clinic does not know yet. Echoes, reads and
        reactions are passed over. The answer is {"received": true} either way."""
        notification = webhook.verified(
            settings=settings,
            body=request.get_data(cache=True),
            signature=request.headers.get("X-Hub-Signature-256"),
        )
        webhook.receive(session=uow, notification=notification, settings=settings, now=now)
        return {"received": True}
