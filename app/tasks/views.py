"""Follow-up task endpoints: a lead's tasks, my tasks, overdue, complete/snooze/cancel, templates.
My next call (POST /api/me/next-task) is app/intelligence/views.py: its why reads the SLA clocks and
contact times, above tasks."""

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import check_if_match, make_blueprint, set_item_count, with_etag
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.csv_export import csv_stream
from app.idempotency.web import idempotent
from app.tasks import export, outcomes, schemas, series, service, team, templates

blp = make_blueprint("tasks", "Follow-up tasks, reminders and task templates")


@blp.route("/leads/<int:lead_id>/tasks")
class LeadTasks(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.LeadTasksArgs, location="query")
    @blp.response(200, schemas.TaskOut(many=True))
    @blp.paginate()
    def get(self, args, lead_id, pagination_parameters):
        """A lead's tasks, by due time then priority."""
        with unit_of_work() as session:
            tasks, total = service.list_lead_tasks(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                status=args.get("status"),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return tasks

    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.TaskCreateIn)
    @blp.response(201, schemas.TaskOut)
    @blp.alt_response(409, description="The lead is converted or lost")
    def post(self, body, lead_id):
        """Create a task (fields, or a template_id); assigned to the lead's coordinator unless named."""
        with unit_of_work() as session:
            return series.create(
                session=session, actor=current_actor(), lead_id=lead_id, data=body, now=clock.now()
            )


@blp.route("/leads/tasks/<int:task_id>")
class TaskById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TaskOut)
    def get(self, task_id):
        """One task."""
        with unit_of_work() as session:
            task = service.get_task(session=session, clinic_id=current_actor().clinic_id, task_id=task_id)
            return with_etag(task, schemas.TaskOut())

    @requires(Permission.UPDATE)
    @blp.arguments(schemas.TaskUpdateIn)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is completed or cancelled")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    def put(self, body, task_id):
        """Change a task (or, with apply_to=series, its whole recurring series); a new due time,
        assignee or reminder setting reschedules its reminders."""
        actor = current_actor()
        with unit_of_work() as session:
            check_if_match(
                service.get_task(session=session, clinic_id=actor.clinic_id, task_id=task_id),
                schemas.TaskOut(),
            )
            apply_to = body.pop("apply_to")
            task = series.update(
                session=session,
                actor=actor,
                task_id=task_id,
                changes=body,
                apply_to=apply_to,
                now=clock.now(),
            )
            return with_etag(task, schemas.TaskOut())


@blp.route("/leads/tasks/<int:task_id>/complete")
class CompleteTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.CompleteIn)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is already closed (or the lead is closed: no follow-up)")
    def post(self, body, task_id):
        """Complete a task with its outcome and notes (TASK_COMPLETED on the lead's timeline); outcome
        rescheduled with `reschedule_to` makes the follow-up task."""
        with unit_of_work() as session:
            return outcomes.complete(
                session=session,
                actor=current_actor(),
                task_id=task_id,
                outcome=body["outcome"],
                notes=body.get("notes"),
                reschedule_to=body.get("reschedule_to"),
                now=clock.now(),
            )


@blp.route("/leads/tasks/<int:task_id>/snooze")
class SnoozeTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.SnoozeIn)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is already closed")
    def post(self, body, task_id):
        """Snooze a task to a time (`until`) or by `minutes`; its reminders move with it."""
        with unit_of_work() as session:
            return service.snooze_task(
                session=session,
                actor=current_actor(),
                task_id=task_id,
                until=body.get("until"),
                minutes=body.get("minutes"),
                now=clock.now(),
            )


@blp.route("/leads/tasks/<int:task_id>/cancel")
class CancelTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is already closed")
    def post(self, task_id):
        """Cancel a task and its reminders."""
        with unit_of_work() as session:
            return service.cancel_task(
                session=session, actor=current_actor(), task_id=task_id, now=clock.now()
            )


@blp.route("/leads/tasks/my-tasks")
class MyTasks(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.MyTasksArgs, location="query")
    @blp.response(200, schemas.MyTaskOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """My tasks (open unless a status is given), by due time then priority."""
        with unit_of_work() as session:
            tasks, total = service.my_tasks(
                session=session,
                actor=current_actor(),
                status=args.get("status"),
                due_from=args.get("due_from"),
                due_to=args.get("due_to"),
                overdue_only=args["overdue"],
                now=clock.now(),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return tasks


@blp.route("/leads/tasks/overdue")
class OverdueTasks(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TaskOut(many=True))
    @blp.paginate()
    def get(self, pagination_parameters):
        """Open tasks past due: the clinic's for a clinic_admin, my own otherwise."""
        with unit_of_work() as session:
            tasks, total = service.overdue_tasks(
                session=session,
                actor=current_actor(),
                now=clock.now(),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return tasks


@blp.route("/leads/tasks")
class TeamTasks(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.TeamTasksArgs, location="query")
    @blp.response(200, schemas.TaskOut(many=True))
    @blp.paginate()
    def get(self, args, pagination_parameters):
        """The clinic's tasks for a manager: filter by assignee, status, type, priority, lead, due range,
        overdue; sort by a field (`-` for descending); paged."""
        sort = args.pop("sort")
        with unit_of_work() as session:
            tasks, total = team.team_tasks(
                session=session,
                actor=current_actor(),
                filters=args,
                sort=sort,
                now=clock.now(),
                page=pagination_parameters.page,
                page_size=pagination_parameters.page_size,
            )
        set_item_count(pagination_parameters, total)
        return tasks


@blp.route("/leads/tasks/export")
class TeamTasksExport(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.TeamTasksArgs, location="query")
    @blp.response(200, content_type="text/csv", description="The tasks as CSV, streamed")
    def get(self, args):
        """The tasks of the team view's filters as CSV, streamed; the export is audited. Descriptions
        and outcome notes only for a reader with `lead:phi`."""
        actor, sort, now = current_actor(), args.pop("sort"), clock.now()
        with unit_of_work() as session:
            columns = export.start(session=session, actor=actor, filters=args, now=now)

        def rows():
            with unit_of_work() as session:
                yield from export.rows(
                    session=session, actor=actor, filters=args, sort=sort, columns=columns, now=now
                )

        return csv_stream("tasks", columns, rows())


@blp.route("/leads/tasks/summary")
class TeamTaskSummary(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.TeamFilterArgs, location="query")
    @blp.response(200, schemas.TaskSummaryOut)
    def get(self, args):
        """Task counts by status and by due bucket (overdue, today, this week, later), per assignee."""
        with unit_of_work() as session:
            return team.summary(session=session, actor=current_actor(), filters=args, now=clock.now())


@blp.route("/task-templates")
class Templates(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TemplateOut(many=True))
    def get(self):
        """The clinic's task templates."""
        with unit_of_work() as session:
            return templates.list_templates(session=session, clinic_id=current_actor().clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.TemplateCreateIn)
    @blp.response(201, schemas.TemplateOut)
    @blp.alt_response(409, description="A template of that name exists")
    def post(self, body):
        """Create a task template (title, type, priority, due offset, description)."""
        with unit_of_work() as session:
            return templates.create_template(
                session=session, actor=current_actor(), data=body, now=clock.now()
            )


@blp.route("/task-templates/<int:template_id>")
class TemplateById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TemplateOut)
    def get(self, template_id):
        """One task template."""
        with unit_of_work() as session:
            return templates.get_template(
                session=session, clinic_id=current_actor().clinic_id, template_id=template_id
            )

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.TemplateUpdateIn)
    @blp.response(200, schemas.TemplateOut)
    @blp.alt_response(409, description="A template of that name exists")
    def put(self, body, template_id):
        """Change a task template."""
        with unit_of_work() as session:
            return templates.update_template(
                session=session, actor=current_actor(), template_id=template_id, data=body, now=clock.now()
            )

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    def delete(self, template_id):
        """Deactivate a task template (tasks made from it keep their link)."""
        with unit_of_work() as session:
            templates.deactivate_template(
                session=session, actor=current_actor(), template_id=template_id, now=clock.now()
            )
