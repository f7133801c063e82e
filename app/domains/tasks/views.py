"""Follow-up task endpoints: a lead's tasks, my tasks, overdue, complete/snooze/cancel, templates.
My next call (POST /api/me/next-task) is app/domains/intelligence/views.py: its why reads the SLA clocks and
contact times, above tasks."""

from flask.views import MethodView

from app.domains.tasks import export, outcomes, schemas, series, service, team, templates
from app.platform.access import requires
from app.platform.api import check_if_match, make_blueprint, set_item_count, with_etag
from app.platform.api.injection import inject, streamed
from app.platform.csv_export import csv_stream
from app.platform.db import PageRequest
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission

blp = make_blueprint("tasks", "Follow-up tasks, reminders and task templates")


@blp.route("/leads/<int:lead_id>/tasks")
class LeadTasks(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.LeadTasksArgs, location="query")
    @blp.response(200, schemas.TaskOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, lead_id, pagination_parameters, *, uow, actor):
        """A lead's tasks, by due time then priority."""
        tasks, total = service.list_lead_tasks(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            status=args.get("status"),
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return tasks

    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.TaskCreateIn)
    @blp.response(201, schemas.TaskOut)
    @blp.alt_response(409, description="The lead is converted or lost")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Create a task (fields, or a template_id); assigned to the lead's coordinator unless named."""
        return series.create(session=uow, actor=actor, lead_id=lead_id, data=body, now=now)


@blp.route("/leads/tasks/<int:task_id>")
class TaskById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TaskOut)
    @inject
    def get(self, task_id, *, uow, actor):
        """One task."""
        task = service.get_task(session=uow, clinic_id=actor.clinic_id, task_id=task_id)
        return with_etag(task, schemas.TaskOut())

    @requires(Permission.UPDATE)
    @blp.arguments(schemas.TaskUpdateIn)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is completed or cancelled")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, task_id, *, uow, actor, now):
        """Change a task (or, with apply_to=series, its whole recurring series); a new due time,
        assignee or reminder setting reschedules its reminders."""
        check_if_match(
            service.get_task(session=uow, clinic_id=actor.clinic_id, task_id=task_id),
            schemas.TaskOut(),
        )
        apply_to = body.pop("apply_to")
        task = series.update(
            session=uow,
            actor=actor,
            task_id=task_id,
            changes=body,
            apply_to=apply_to,
            now=now,
        )
        return with_etag(task, schemas.TaskOut())


@blp.route("/leads/tasks/<int:task_id>/complete")
class CompleteTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.CompleteIn)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(403, description="The outcome converted without lead:convert")
    @blp.alt_response(409, description="The task is already closed (or the lead is closed: no follow-up)")
    @inject
    def post(self, body, task_id, *, uow, actor, now):
        """Complete a task with its outcome and notes (TASK_COMPLETED on the lead's timeline); outcome
        rescheduled with `reschedule_to` makes the follow-up task. A call task completed with a call's
        outcome is the call logged, as Today and the lead page log it: a PHONE_CALL activity with the
        outcome and notes, the task completed with it (callback_requested: due again at
        `callback_at`; not_interested: the lead lost for `lost_reason`; converted: needs lead:convert)."""
        return outcomes.complete(
            session=uow, actor=actor, task_id=task_id, completion=outcomes.Completion(**body), now=now
        )


@blp.route("/leads/tasks/<int:task_id>/snooze")
class SnoozeTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.SnoozeIn)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is already closed")
    @inject
    def post(self, body, task_id, *, uow, actor, now):
        """Snooze a task to a time (`until`) or by `minutes`; its reminders move with it."""
        return service.snooze_task(
            session=uow,
            actor=actor,
            task_id=task_id,
            until=body.get("until"),
            minutes=body.get("minutes"),
            now=now,
        )


@blp.route("/leads/tasks/<int:task_id>/cancel")
class CancelTask(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.TaskOut)
    @blp.alt_response(409, description="The task is already closed")
    @inject
    def post(self, task_id, *, uow, actor, now):
        """Cancel a task and its reminders."""
        return service.cancel_task(session=uow, actor=actor, task_id=task_id, now=now)


@blp.route("/leads/tasks/my-tasks")
class MyTasks(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.MyTasksArgs, location="query")
    @blp.response(200, schemas.MyTaskOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor, now):
        """My tasks (open unless a status is given), by due time then priority."""
        tasks, total = service.my_tasks(
            session=uow,
            actor=actor,
            filters=service.MyTasksFilter(
                status=args.get("status"),
                due_from=args.get("due_from"),
                due_to=args.get("due_to"),
                overdue_only=args["overdue"],
            ),
            now=now,
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return tasks


@blp.route("/leads/tasks/overdue")
class OverdueTasks(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TaskOut(many=True))
    @blp.paginate()
    @inject
    def get(self, pagination_parameters, *, uow, actor, now):
        """Open tasks past due: the clinic's for a clinic_admin, my own otherwise."""
        tasks, total = service.overdue_tasks(
            session=uow,
            actor=actor,
            now=now,
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return tasks


@blp.route("/leads/tasks")
class TeamTasks(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.TeamTasksArgs, location="query")
    @blp.response(200, schemas.TaskOut(many=True))
    @blp.paginate()
    @inject
    def get(self, args, pagination_parameters, *, uow, actor, now):
        """The clinic's tasks for a manager: filter by assignee, status, type, priority, lead, due range,
        overdue; sort by a field (`-` for descending); paged."""
        sort = args.pop("sort")
        tasks, total = team.team_tasks(
            session=uow,
            actor=actor,
            filters=args,
            sort=sort,
            now=now,
            paging=PageRequest.of(pagination_parameters),
        )
        set_item_count(pagination_parameters, total)
        return tasks


@blp.route("/leads/tasks/export")
class TeamTasksExport(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.TeamTasksArgs, location="query")
    @blp.response(200, content_type="text/csv", description="The tasks as CSV, streamed")
    @inject
    def get(self, args, *, uow, actor, now):
        """The tasks of the team view's filters as CSV, streamed; the export is audited. Descriptions
        and outcome notes only for a reader with `lead:phi`."""
        sort = args.pop("sort")
        columns = export.start(session=uow, actor=actor, filters=args, now=now)
        rows = streamed(
            lambda stream_uow: export.rows(
                session=stream_uow, actor=actor, filters=args, sort=sort, columns=columns, now=now
            )
        )
        return csv_stream("tasks", columns, rows)


@blp.route("/leads/tasks/summary")
class TeamTaskSummary(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.TeamFilterArgs, location="query")
    @blp.response(200, schemas.TaskSummaryOut)
    @inject
    def get(self, args, *, uow, actor, now):
        """Task counts by status and by due bucket (overdue, today, this week, later), per assignee."""
        return team.summary(session=uow, actor=actor, filters=args, now=now)


@blp.route("/task-templates")
class Templates(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TemplateOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's task templates."""
        return templates.list_templates(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.TemplateCreateIn)
    @blp.response(201, schemas.TemplateOut)
    @blp.alt_response(409, description="A template of that name exists")
    @inject
    def post(self, body, *, uow, actor, now):
        """Create a task template (title, type, priority, due offset, description)."""
        return templates.create_template(session=uow, actor=actor, data=body, now=now)


@blp.route("/task-templates/<int:template_id>")
class TemplateById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TemplateOut)
    @inject
    def get(self, template_id, *, uow, actor):
        """One task template."""
        return templates.get_template(session=uow, clinic_id=actor.clinic_id, template_id=template_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.TemplateUpdateIn)
    @blp.response(200, schemas.TemplateOut)
    @blp.alt_response(409, description="A template of that name exists")
    @inject
    def put(self, body, template_id, *, uow, actor, now):
        """Change a task template."""
        return templates.update_template(
            session=uow, actor=actor, template_id=template_id, data=body, now=now
        )

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, template_id, *, uow, actor, now):
        """Deactivate a task template (tasks made from it keep their link)."""
        templates.deactivate_template(session=uow, actor=actor, template_id=template_id, now=now)
