from flask.views import MethodView

from app.platform.access import requires
from app.platform.api import make_blueprint, set_item_count
from app.platform.api.injection import inject
from app.platform.db import PageRequest
from app.platform.roles import Permission
from app.platform.scheduling import job_admin, schemas

blp = make_blueprint("jobs", "The job ledger: scheduled automation steps, what happened to them, retry")


@blp.route("/jobs")
class Jobs(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.JobQueryArgs, location="query")
    @blp.response(200, schemas.JobOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor):
        """The clinic's jobs, newest due first; filter by status, kind and subject (`lead:7`)."""
        subject = schemas.parse_subject(args["subject"]) if args.get("subject") else None
        jobs, total = job_admin.list_jobs(
            session=uow,
            clinic_id=actor.clinic_id,
            status=args.get("status"),
            kind=args.get("kind"),
            subject=subject,
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return jobs


@blp.route("/jobs/<int:job_id>")
class Job(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.JobOut)
    @inject
    def get(self, job_id, *, uow, actor):
        """One job: what, when, why (origin), and what happened (attempts, last error, times)."""
        return job_admin.get_job(session=uow, job_id=job_id, clinic_id=actor.clinic_id)


@blp.route("/jobs/<int:job_id>/retry")
class RetryJob(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.JobOut)
    @blp.alt_response(409, description="The job is neither dead nor failed")
    @inject
    def post(self, job_id, *, uow, actor, now):
        """Run a dead (attempts spent) or failed (no handler) job again now, attempts reset (audited).

        Any other status is a 409."""
        return job_admin.retry_job(
            session=uow, job_id=job_id, clinic_id=actor.clinic_id, actor=actor.ref, now=now
        )
