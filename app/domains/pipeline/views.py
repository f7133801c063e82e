"""Pipeline endpoints: stage configuration; moving, losing and converting leads."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.leads.schemas import LeadOut
from app.domains.pipeline import schemas, service, stage_settings
from app.platform.access import requires
from app.platform.api import check_if_match, make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("pipeline", "Pipeline stages, stage changes, conversion and loss")


@blp.route("/pipeline-stages")
class Stages(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.StageOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's pipeline stages in board order."""
        return service.list_stages(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.StageIn)
    @blp.response(201, schemas.StageOut)
    @blp.alt_response(409, description="The slug is taken in this clinic")
    @inject
    def post(self, body, *, uow, actor, now):
        """Add a stage to the pipeline."""
        return stage_settings.create_stage(session=uow, actor=actor, data=body, now=now)


@blp.route("/pipeline-stages/reorder")
class ReorderStages(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.ReorderIn)
    @blp.response(200, schemas.StageOut(many=True))
    @inject
    def put(self, body, *, uow, actor, now):
        """Reorder the pipeline: list every stage id of the clinic once, in the new order."""
        return stage_settings.reorder_stages(session=uow, actor=actor, stage_ids=body["stage_ids"], now=now)


@blp.route("/pipeline-stages/<int:stage_id>")
class StageById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.StageOut)
    @inject
    def get(self, stage_id, *, uow, actor):
        """One pipeline stage."""
        stage = service.get_stage(session=uow, clinic_id=actor.clinic_id, stage_id=stage_id)
        return with_etag(stage, schemas.StageOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.StageUpdateIn)
    @blp.response(200, schemas.StageOut)
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, stage_id, *, uow, actor, now):
        """Rename, recolour, set the time limit, the task template and the flags of a stage."""
        current = service.get_stage(
            session=uow, clinic_id=actor.clinic_id, stage_id=stage_id, for_update=True
        )
        check_if_match(current, schemas.StageOut())
        stage = stage_settings.update_stage(session=uow, actor=actor, stage_id=stage_id, data=body, now=now)
        return with_etag(stage, schemas.StageOut())


@blp.route("/leads/<int:lead_id>/stage")
class LeadStage(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.StageChangeIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="Backwards, out of a terminal stage, or the lead is converted")
    @blp.alt_response(
        422,
        description="A field refused: stage (not in the pipeline, treatment_started: convert instead, or"
        " consultation_completed before the lead's consultation starts), reason (lost needs one)",
    )
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Move a lead to a stage (forward, or to lost with a reason)."""
        lead = service.change_stage(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            change=service.StageChange(
                stage=body["stage"],
                reason=body.get("reason"),
                notes=body.get("notes"),
                hesitation_reason=body.get("hesitation_reason"),
            ),
            now=now,
        )
        return with_etag(lead, LeadOut())


@blp.route("/leads/<int:lead_id>/lost")
class LeadLost(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.LostIn)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="The lead is already lost or converted")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Mark a lead lost, with a reason."""
        lead = service.mark_lost(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            reason=body["reason"],
            notes=body.get("notes"),
            now=now,
        )
        return with_etag(lead, LeadOut())


@blp.route("/leads/<int:lead_id>/convert")
class LeadConvert(MethodView):
    @requires(Permission.CONVERT)
    @blp.arguments(schemas.ConvertIn, required=False)
    @blp.response(200, LeadOut)
    @blp.alt_response(409, description="The lead is already converted, or lost")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Convert a lead to a patient (treatment started); the lead is locked from then on.

        The body is optional: `treatment_value` records what the treatment is worth (revenue per source).
        """
        lead = service.convert_lead(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            now=now,
            treatment_value=body.get("treatment_value"),
        )
        return with_etag(lead, LeadOut())
