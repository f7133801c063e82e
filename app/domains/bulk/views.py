"""Bulk endpoints: start a bulk follow-up (202), poll its bulk job."""

from flask.views import MethodView

from app.domains.bulk import admin, schemas, service, task_actions
from app.platform.access import requires
from app.platform.api import make_blueprint, set_item_count
from app.platform.api.injection import inject
from app.platform.db import PageRequest
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission

blp = make_blueprint("bulk", "Bulk post-event follow-ups, processed in the background")


@blp.route("/leads/tasks/bulk")
class BulkTasks(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.BulkTasksIn)
    @blp.response(202, schemas.BulkJobOut)
    @blp.alt_response(404, description="A lead id is not one of the clinic's")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """One follow-up task per lead (ids or a filter), made in the background; poll the bulk job."""
        return service.start_bulk_tasks(
            session=uow,
            actor=actor,
            data=body,
            chunk_size=settings.bulk_chunk_size,
            now=now,
        )


@blp.route("/leads/tasks/bulk-actions")
class BulkTaskActions(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.BulkTaskActionsIn)
    @blp.response(202, schemas.BulkJobOut)
    @blp.alt_response(404, description="A task id is not one of the clinic's")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """Reassign, reschedule (by offset_minutes or to due_at), complete or cancel many tasks (ids or a
        filter) in the background; poll the bulk job. Each task is changed once and its timers replaced
        once, also when a worker dies mid-way."""
        return task_actions.start(
            session=uow,
            actor=actor,
            data=body,
            chunk_size=settings.bulk_chunk_size,
            now=now,
        )


@blp.route("/bulk-jobs")
class BulkJobs(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.BulkJobsArgs, location="query")
    @blp.response(200, schemas.BulkJobOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor):
        """The clinic's bulk jobs, newest first: `?status=running`."""
        jobs, total = admin.list_bulk_jobs(
            session=uow,
            clinic_id=actor.clinic_id,
            status=args.get("status"),
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return jobs


@blp.route("/bulk-jobs/<int:bulk_job_id>/cancel")
class CancelBulkJob(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.BulkJobOut)
    @blp.alt_response(409, description="The bulk job has finished already")
    @inject
    def post(self, bulk_job_id, *, uow, actor, now):
        """Stop a pending or running bulk job: its chunks not yet run never run (audited)."""
        return admin.cancel_bulk_job(session=uow, actor=actor, bulk_job_id=bulk_job_id, now=now)


@blp.route("/bulk-jobs/<int:bulk_job_id>")
class BulkJobById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.BulkJobOut)
    @inject
    def get(self, bulk_job_id, *, uow, actor):
        """A bulk job's progress: status, total, done, failed, errors."""
        return service.get_bulk_job(session=uow, clinic_id=actor.clinic_id, bulk_job_id=bulk_job_id)


@blp.route("/bulk-jobs/<int:bulk_job_id>/rows")
class BulkJobRows(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.BulkJobRowsArgs, location="query")
    @blp.response(200, schemas.BulkJobRowOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, bulk_job_id, pagination_parameters, *, uow, actor):
        """A lead import's per-row report in row order: created, duplicate, or invalid with the field."""
        rows, total = service.list_rows(
            session=uow,
            clinic_id=actor.clinic_id,
            bulk_job_id=bulk_job_id,
            outcome=args.get("outcome"),
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return rows
