"""Pipeline endpoints: stage configuration; moving, losing and converting leads."""

from __future__ import annotations

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import check_if_match, make_blueprint, with_etag
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.leads.schemas import LeadOut
from app.pipeline import schemas, service, stage_settings

blp = make_blueprint("pipeline", "Pipeline stages, stage changes, conversion and loss")


@blp.route("/pipeline-stages")
class Stages(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.StageOut(many=True))
    def get(self):
        """The clinic's pipeline stages in board order."""
        with unit_of_work() as session:
            return service.list_stages(session=session, clinic_id=current_actor().clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.StageIn)
    @blp.response(201, schemas.StageOut)
    @blp.alt_response(409, description="The slug is taken in this clinic")
    def post(self, body):
        """Add a stage to the pipeline."""
        with unit_of_work() as session:
            return stage_settings.create_stage(
                session=session, actor=current_actor(), data=body, now=clock.now()
            )


@blp.route("/pipeline-stages/reorder")
class ReorderStages(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ReorderIn)
    @blp.response(200, schemas.StageOut(many=True))
    def put(self, body):
        """Reorder the pipeline: list every stage id of the clinic once, in the new order."""
        with unit_of_work() as session:
            return stage_settings.reorder_stages(
                session=session, actor=current_actor(), stage_ids=body["stage_ids"], now=clock.now()
            )


@blp.route("/pipeline-stages/<int:stage_id>")
class StageById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.StageOut)
    def get(self, stage_id):
        """One pipeline stage."""
        with unit_of_work() as session:
            stage = service.get_stage(session=session, clinic_id=current_actor().clinic_id, stage_id=stage_id)
            return with_etag(stage, schemas.StageOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.StageUpdateIn)
    @blp.response(200, schemas.StageOut)
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    def put(self, body, stage_id):
        """Rename, recolour, set the time limit, the task template and the flags of a stage."""
        actor = current_actor()
        with unit_of_work() as session:
            current = service.get_stage(
                session=session, clinic_id=actor.clinic_id, stage_id=stage_id, for_update=True
            )
            check_if_match(current, schemas.StageOut())
            stage = stage_settings.update_stage(
                session=session, actor=actor, stage_id=stage_id, data=body, now=clock.now()
            )
            return with_etag(stage, schemas.StageOut())


@blp.route("/leads/<int:lead_id>/stage")
class LeadStage(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.StageChangeIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="Backwards, out of a terminal stage, or the lead is converted")
    def post(self, body, lead_id):
        """Move a lead to a stage (forward, or to lost with a reason)."""
        with unit_of_work() as session:
            lead = service.change_stage(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                stage=body["stage"],
                reason=body.get("reason"),
                notes=body.get("notes"),
                hesitation_reason=body.get("hesitation_reason"),
                now=clock.now(),
            )
            return with_etag(lead, LeadOut())


@blp.route("/leads/<int:lead_id>/lost")
class LeadLost(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.LostIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="The lead is already lost or converted")
    def post(self, body, lead_id):
        """Mark a lead lost, with a reason."""
        with unit_of_work() as session:
            lead = service.mark_lost(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                reason=body["reason"],
                notes=body.get("notes"),
                now=clock.now(),
            )
            return with_etag(lead, LeadOut())


@blp.route("/leads/<int:lead_id>/convert")
class LeadConvert(MethodView):
    @requires(Permission.CONVERT)
    @blp.arguments(schemas.ConvertIn, required=False)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="The lead is already converted, or lost")
    def post(self, body, lead_id):
        """Convert a lead to a patient (treatment started); the lead is locked from then on.

        The body is optional: `treatment_value` records what the treatment is worth (revenue per source).
        """
        with unit_of_work() as session:
            lead = service.convert_lead(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                now=clock.now(),
                treatment_value=body.get("treatment_value"),
            )
            return with_etag(lead, LeadOut())
