from flask.views import MethodView

from app.access import current_actor, requires
from app.api import make_blueprint, set_item_count
from app.app_db import unit_of_work
from app.audit import schemas, service
from app.auth.roles import Permission

blp = make_blueprint("audit", "The audit trail")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.AuditQueryArgs, location="query")
    @blp.response(200, schemas.AuditEventOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The clinic's audit events, newest first; filter by subject, actor and action."""
        subject = schemas.parse_subject(args["subject"]) if args.get("subject") else None
        with unit_of_work() as session:
            events, total = service.list_events(
                session=session,
                clinic_id=current_actor().clinic_id,
                subject=subject,
                actor=args.get("actor"),
                action=args.get("action"),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return events
