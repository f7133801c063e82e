from flask.views import MethodView

from app.platform.access import requires
from app.platform.api import make_blueprint, set_item_count
from app.platform.api.injection import inject
from app.platform.audit import schemas, service
from app.platform.db import PageRequest
from app.platform.roles import Permission

blp = make_blueprint("audit", "The audit trail")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.AuditQueryArgs, location="query")
    @blp.response(200, schemas.AuditEventOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor):
        """The clinic's audit events, newest first; filter by subject, actor and action."""
        subject = schemas.parse_subject(args["subject"]) if args.get("subject") else None
        events, total = service.list_events(
            session=uow,
            clinic_id=actor.clinic_id,
            subject=subject,
            actor=args.get("actor"),
            action=args.get("action"),
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return events
