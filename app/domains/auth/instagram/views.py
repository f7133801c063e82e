"""A clinic's Instagram professional account: connected, read (the token masked), disconnected."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.auth.instagram import schemas
from app.domains.auth.instagram import service as instagram
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("instagram_account", "Instagram: the clinic's connected professional account")


@blp.route("/integrations/instagram")
class InstagramIntegration(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.InstagramAccountOut)
    @blp.alt_response(404, description="No Instagram account is connected")
    @inject
    def get(self, *, uow, actor):
        """The clinic's connected Instagram account: its id, when it was connected and last used, the
        token masked (never the token)."""
        return instagram.get_account(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.InstagramAccountIn)
    @blp.response(200, schemas.InstagramAccountOut)
    @blp.alt_response(409, description="The account is connected to another clinic")
    @blp.alt_response(503, description="Meta could not be asked whose the token is; nothing changed")
    @inject
    def put(self, body, *, uow, actor, now, settings):
        """Connect the clinic's Instagram professional account (or replace its token): DMs to it become
        leads and replies, and the clinic's Instagram messages are sent with the token (kept
        encrypted). The token must be the account's: Meta is asked whose it is (`GET /me`), and a token
        of another account, or one Meta refuses, is a 422 naming access_token. One account per clinic;
        an account in one clinic only."""
        return instagram.connect(
            session=uow,
            actor=actor,
            account_id=body["account_id"],
            access_token=body["access_token"],
            now=now,
            settings=settings,
        )

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @blp.alt_response(404, description="No Instagram account is connected")
    @inject
    def delete(self, *, uow, actor, now):
        """Disconnect: the token is forgotten; DMs to the account are no longer taken in."""
        instagram.disconnect(session=uow, actor=actor, now=now)


@blp.route("/leads/<int:lead_id>/instagram")
class LeadInstagram(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.InstagramContactOut)
    @blp.alt_response(404, description="The lead never wrote on Instagram, or is not found")
    @inject
    def get(self, lead_id, *, uow, actor):
        """The lead's Instagram user (handle, scoped id), their last DM, and until when Meta lets the
        clinic write: automated messages (24 hours), a person's reply (7 days)."""
        return instagram.lead_contact(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)
