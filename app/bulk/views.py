"""Bulk endpoints: start a bulk follow-up (202), poll its bulk job."""

from flask import current_app
from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import make_blueprint, set_item_count
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.bulk import admin, schemas, service, task_actions
from app.idempotency.web import idempotent

blp = make_blueprint("bulk", "Bulk post-event follow-ups, processed in the background")


@blp.route("/leads/tasks/bulk")
class BulkTasks(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.BulkTasksIn)
    @blp.response(202, schemas.BulkJobOut)
    def post(self, body):
        """One follow-up task per lead (ids or a filter), made in the background; poll the bulk job."""
        with unit_of_work() as session:
            return service.start_bulk_tasks(
                session=session,
                actor=current_actor(),
                data=body,
                chunk_size=current_app.config["SETTINGS"].bulk_chunk_size,
                now=clock.now(),
            )


@blp.route("/leads/tasks/bulk-actions")
class BulkTaskActions(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.BulkTaskActionsIn)
    @blp.response(202, schemas.BulkJobOut)
    @blp.alt_response(404, description="A task id is not one of the clinic's")
    def post(self, body):
        """Reassign, reschedule (by offset_minutes or to due_at), complete or cancel many tasks (ids or a
        filter) in the background; poll the bulk job. Each task is changed once and its timers replaced
        once, also when a worker dies mid-way."""
        with unit_of_work() as session:
            return task_actions.start(
                session=session,
                actor=current_actor(),
                data=body,
                chunk_size=current_app.config["SETTINGS"].bulk_chunk_size,
                now=clock.now(),
            )


@blp.route("/bulk-jobs")
class BulkJobs(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.BulkJobsArgs, location="query")
    @blp.response(200, schemas.BulkJobOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The clinic's bulk jobs, newest first: `?status=running`."""
        with unit_of_work() as session:
            jobs, total = admin.list_bulk_jobs(
                session=session,
                clinic_id=current_actor().clinic_id,
                status=args.get("status"),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return jobs


@blp.route("/bulk-jobs/<int:bulk_job_id>/cancel")
class CancelBulkJob(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.BulkJobOut)
    @blp.alt_response(409, description="The bulk job has finished already")
    def post(self, bulk_job_id):
        """Stop a pending or running bulk job: its chunks not yet run never run (audited)."""
        actor = current_actor()
        with unit_of_work() as session:
            return admin.cancel_bulk_job(
                session=session, actor=actor, bulk_job_id=bulk_job_id, now=clock.now()
            )


@blp.route("/bulk-jobs/<int:bulk_job_id>")
class BulkJobById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.BulkJobOut)
    def get(self, bulk_job_id):
        """A bulk job's progress: status, total, done, failed, errors."""
        with unit_of_work() as session:
            return service.get_bulk_job(
                session=session, clinic_id=current_actor().clinic_id, bulk_job_id=bulk_job_id
            )


@blp.route("/bulk-jobs/<int:bulk_job_id>/rows")
class BulkJobRows(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.BulkJobRowsArgs, location="query")
    @blp.response(200, schemas.BulkJobRowOut(many=True))
    @blp.paginate()
    def get(self, args, bulk_job_id, pagination_parameters):
        """A lead import's per-row report in row order: created, duplicate, or invalid with the field."""
        with unit_of_work() as session:
            rows, total = service.list_rows(
                session=session,
                clinic_id=current_actor().clinic_id,
                bulk_job_id=bulk_job_id,
                outcome=args.get("outcome"),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return rows
