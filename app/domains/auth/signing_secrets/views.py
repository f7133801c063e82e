"""The clinic's signing secrets: made (the secret shown once), listed, rotated, revoked; and the
retirement of its single webhook secret."""

from __future__ import annotations

from datetime import timedelta

from flask.views import MethodView

from app.domains.auth import service as auth
from app.domains.auth.signing import Scope
from app.domains.auth.signing_secrets import schemas
from app.domains.auth.signing_secrets import service as signing_secrets
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("signing_secrets", "Signing secrets: one per integration that signs its requests")


@blp.route("/signing-secrets")
class SigningSecrets(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.SigningSecretOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's signing secrets: name, key id, scopes and last use (never the secrets)."""
        return signing_secrets.list_secrets(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SigningSecretIn)
    @blp.response(201, schemas.SigningSecretCreatedOut)
    @inject
    def post(self, body, *, uow, actor, now):
        """Create a signing secret for the endpoints of its scopes; the secret is shown once. One
        with the web_form scope retires the clinic's single webhook secret."""
        return signing_secrets.create(
            session=uow, actor=actor, name=body["name"], scopes=body["scopes"], now=now
        )


@blp.route("/signing-secrets/<int:secret_id>")
class SigningSecretById(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, secret_id, *, uow, actor, now):
        """Revoke a signing secret: requests it signs are refused from now on."""
        signing_secrets.revoke(session=uow, actor=actor, secret_id=secret_id, now=now)


@blp.route("/signing-secrets/<int:secret_id>/rotate")
class RotateSigningSecret(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.RotateIn)
    @blp.response(201, schemas.SigningSecretCreatedOut)
    @blp.alt_response(409, description="The secret is revoked, expired, or rotated already")
    @inject
    def post(self, body, secret_id, *, uow, actor, now):
        """Rotate: a new secret (shown once, a new key id) with the same name and scopes; the old one
        still verifies for `overlap_hours`, then only the new one does."""
        return signing_secrets.rotate(
            session=uow,
            actor=actor,
            secret_id=secret_id,
            overlap=timedelta(hours=body["overlap_hours"]),
            now=now,
        )


@blp.route("/clinic/webhook-secret")
class ClinicWebhookSecret(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.WebhookSecretOut)
    @inject
    def get(self, *, uow, actor):
        """The clinic's single webhook secret of before: whether it still signs web forms (no value)."""
        clinic = auth.get_clinic(session=uow, clinic_id=actor.clinic_id)
        retired = clinic.webhook_secret_retired_at
        return {"scopes": [] if retired else [Scope.WEB_FORM.value], "retired_at": retired}

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, *, uow, actor, now):
        """Retire the clinic's single webhook secret: web forms must then be signed by a signing secret."""
        signing_secrets.retire_legacy(session=uow, actor=actor, now=now)
