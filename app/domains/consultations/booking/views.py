"""Free slots of a consultation type, and the clashes a practice-management system was let win."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.consultations.booking import clashes, schemas, search
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("slots", "Free slots and booking clashes")


@blp.route("/availability")
class FreeSlots(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.SlotArgs, location="query")
    @blp.response(200, schemas.SlotOut(many=True))
    @blp.alt_response(404, description="No such consultation type or provider in the clinic")
    @inject
    def get(self, args, *, uow, actor, now):
        """The type's free slots over the clinic's local days `from`..`to`: within its providers'
        hours, outside closures, the providers' own busy times and every scheduled consultation (with
        the buffer), after the minimum notice and within the horizon. UTC and the clinic's local time."""
        query = search.SlotQuery(args["type"], args["from_"], args["to"], args.get("provider"))
        return search.free_slots(session=uow, clinic_id=actor.clinic_id, query=query, now=now)


@blp.route("/availability/clashes")
class Clashes(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.ClashArgs, location="query")
    @blp.response(200, schemas.ClashOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """Practice-management bookings stored over another consultation (the clinic lets that system
        win), newest first: for staff to move one of them."""
        return clashes.of_clinic(session=uow, clinic_id=actor.clinic_id, open_only=args.get("open", True))


@blp.route("/availability/clashes/<int:clash_id>/resolve")
class ResolveClash(MethodView):
    @requires(Permission.CREATE)
    @blp.response(200, schemas.ClashOut)
    @inject
    def post(self, clash_id, *, uow, actor, now):
        """Mark a clash sorted out."""
        return clashes.resolve(session=uow, clinic_id=actor.clinic_id, clash_id=clash_id, now=now)
