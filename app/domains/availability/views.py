"""Availability's admin endpoints: the booking settings, providers and chairs, consultation types and
closures of the caller's clinic (another clinic's are not found)."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.availability import schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint(
    "availability", "Availability: consultation types, providers' hours, closures, free slots"
)


@blp.route("/availability/settings")
class Settings(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.SettingsOut)
    @inject
    def get(self, *, uow, actor):
        """The clinic's booking settings: buffer, notice, horizon, slot step, webhook_wins."""
        return service.settings_of(uow, actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SettingsIn)
    @blp.response(200, schemas.SettingsOut)
    @inject
    def put(self, body, *, uow, actor, now):
        """Change the clinic's booking settings (the fields given)."""
        return service.update_settings(session=uow, clinic_id=actor.clinic_id, changes=body, now=now)


@blp.route("/availability/providers")
class Providers(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ProviderOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's providers and chairs, with their calendar feed's status."""
        return service.list_providers(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ProviderCreateIn)
    @blp.response(201, schemas.ProviderOut)
    @blp.alt_response(409, description="name_taken: another provider of the clinic has the name")
    @inject
    def post(self, body, *, uow, actor, now):
        """Add a provider or chair with weekly hours (and dated exceptions) and an optional calendar feed."""
        return service.create_provider(session=uow, clinic_id=actor.clinic_id, fields=body, now=now)


@blp.route("/availability/providers/<int:provider_id>")
class OneProvider(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ProviderOut)
    @inject
    def get(self, provider_id, *, uow, actor):
        """One provider or chair."""
        return service.get_provider(session=uow, clinic_id=actor.clinic_id, provider_id=provider_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ProviderChangeIn)
    @blp.response(200, schemas.ProviderOut)
    @blp.alt_response(409, description="name_taken: another provider of the clinic has the name")
    @inject
    def put(self, body, provider_id, *, uow, actor, now):
        """Change a provider: name, kind, hours, active, calendar feed (null removes it)."""
        return service.update_provider(
            session=uow, clinic_id=actor.clinic_id, provider_id=provider_id, fields=body, now=now
        )


@blp.route("/availability/types")
class Types(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TypeOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's consultation types."""
        return service.list_types(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.TypeCreateIn)
    @blp.response(201, schemas.TypeOut)
    @blp.alt_response(409, description="name_taken: another type of the clinic has the name")
    @inject
    def post(self, body, *, uow, actor, now):
        """Add a consultation type: its length, its providers, in person or virtual, its own rules."""
        return service.create_type(session=uow, clinic_id=actor.clinic_id, fields=body, now=now)


@blp.route("/availability/types/<int:type_id>")
class OneType(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TypeOut)
    @inject
    def get(self, type_id, *, uow, actor):
        """One consultation type."""
        return service.get_type(session=uow, clinic_id=actor.clinic_id, type_id=type_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.TypeChangeIn)
    @blp.response(200, schemas.TypeOut)
    @blp.alt_response(409, description="name_taken: another type of the clinic has the name")
    @inject
    def put(self, body, type_id, *, uow, actor, now):
        """Change a consultation type (the fields given)."""
        return service.update_type(
            session=uow, clinic_id=actor.clinic_id, type_id=type_id, fields=body, now=now
        )


@blp.route("/availability/closures")
class Closures(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ClosureOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's closures, earliest first."""
        return service.list_closures(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ClosureIn)
    @blp.response(201, schemas.ClosureOut)
    @inject
    def post(self, body, *, uow, actor, now):
        """Close the clinic on local days (a holiday): no slot is offered on them."""
        return service.create_closure(session=uow, clinic_id=actor.clinic_id, fields=body, now=now)


@blp.route("/availability/closures/<int:closure_id>")
class OneClosure(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, closure_id, *, uow, actor):
        """Remove a closure."""
        service.delete_closure(session=uow, clinic_id=actor.clinic_id, closure_id=closure_id)
