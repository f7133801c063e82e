"""Sequence endpoints: sequences, a lead's enrollments, and their statistics."""

from __future__ import annotations

from flask.views import MethodView

from app.domains.automation.schemas import StatsArgs
from app.domains.bulk import schemas as bulk_schemas
from app.domains.sequences import bulk_enrolment, follow_up_pass, follow_up_report, schemas, stats, variants
from app.domains.sequences import service as sequences
from app.platform.access import requires
from app.platform.api import check_if_match, make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission

blp = make_blueprint("sequences", "Sequences and enrollments")


@blp.route("/sequences")
class Sequences(MethodView):
    # Reading is lead:read: a coordinator picks a sequence when enrolling a lead.
    @requires(Permission.READ)
    @blp.response(200, schemas.SequenceOut(many=True))
    @inject
    def get(self, *, uow, actor):
        """The clinic's sequences."""
        return sequences.list_sequences(session=uow, clinic_id=actor.clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SequenceIn)
    @blp.response(201, schemas.SequenceOut)
    @blp.alt_response(409, description="A sequence of that name exists")
    @inject
    def post(self, body, *, uow, actor, now, settings):
        """Create a sequence: steps of a delay, then an email, an SMS or a call task."""
        return sequences.create_sequence(session=uow, actor=actor, data=body, now=now, settings=settings)


@blp.route("/sequences/<int:sequence_id>")
class SequenceById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.SequenceOut)
    @inject
    def get(self, sequence_id, *, uow, actor):
        """One sequence."""
        sequence = sequences.get_sequence(session=uow, clinic_id=actor.clinic_id, sequence_id=sequence_id)
        return with_etag(sequence, schemas.SequenceOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SequenceUpdateIn)
    @blp.response(200, schemas.SequenceOut)
    @blp.alt_response(409, description="A sequence of that name exists")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, sequence_id, *, uow, actor, now, settings):
        """Change a sequence; running enrollments follow the new steps from their next step on."""
        current = sequences.get_sequence(
            session=uow, clinic_id=actor.clinic_id, sequence_id=sequence_id, for_update=True
        )
        check_if_match(current, schemas.SequenceOut())
        sequence = sequences.update_sequence(
            session=uow, actor=actor, sequence_id=sequence_id, data=body, now=now, settings=settings
        )
        return with_etag(sequence, schemas.SequenceOut())


@blp.route("/sequences/<int:sequence_id>/enrollments")
class BulkEnrollments(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(bulk_schemas.BulkEnrollmentIn)
    @blp.response(202, bulk_schemas.BulkJobOut)
    @blp.alt_response(404, description="The sequence or a lead id is not one of the clinic's")
    @blp.alt_response(409, description="The sequence is inactive")
    @inject
    def post(self, body, sequence_id, *, uow, actor, now, settings):
        """Enrol many leads (ids or a filter) in the sequence in the background; poll the bulk job, its
        rows say for each lead enrolled or why not (already enrolled, opted out, do not contact)."""
        return bulk_enrolment.start(
            session=uow,
            actor=actor,
            sequence_id=sequence_id,
            data=body,
            chunk_size=settings.bulk_chunk_size,
            now=now,
        )


@blp.route("/leads/<int:lead_id>/enrollments")
class Enrollments(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.EnrollmentOut(many=True))
    @inject
    def get(self, lead_id, *, uow, actor):
        """The lead's enrollments, newest first: status, current step, next step time, why it ended."""
        return sequences.list_enrollments(session=uow, actor=actor, lead_id=lead_id)

    @requires(Permission.UPDATE)
    @blp.arguments(schemas.EnrollIn)
    @blp.response(201, schemas.EnrollmentOut)
    @blp.alt_response(409, description="Already enrolled, inactive sequence, closed or do-not-contact lead")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Enroll the lead in a sequence; its first step is scheduled (or runs now if it has no delay)."""
        return sequences.enroll_by_hand(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            sequence_id=body["sequence_id"],
            now=now,
        )


@blp.route("/leads/<int:lead_id>/enrollments/<int:enrollment_id>/unenroll")
class Unenroll(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.EnrollmentOut)
    @blp.alt_response(409, description="The enrollment has already ended")
    @inject
    def post(self, lead_id, enrollment_id, *, uow, actor, now):
        """End an active enrollment (reason "manual"); its pending step is cancelled."""
        return sequences.unenroll_by_hand(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            enrollment_id=enrollment_id,
            now=now,
        )


@blp.route("/sequences/stats")
class SequenceStats(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(StatsArgs, location="query")
    @blp.response(200, schemas.SequenceStatsOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """Per sequence: enrolled, active, completed, replied, unenrolled by reason, converted within 30
        days of enrolling."""
        return stats.sequence_stats(
            session=uow,
            clinic_id=actor.clinic_id,
            start=args.get("start"),
            end=args.get("end"),
        )


@blp.route("/leads/analytics/follow-ups")
class FollowUpReport(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(StatsArgs, location="query")
    @blp.response(200, schemas.FollowUpReportOut)
    @inject
    def get(self, args, *, uow, actor, now):
        """Follow-ups (sequence steps' automated messages, the follow-up pass's among them): sent on
        the clinic's local today; over the range (default the last 30 days) sent, replied and the
        response rate, conversion by sequence, the top messages by reply rate (at least `min_sample`
        sent) and the leads at each step of each sequence now."""
        return follow_up_report.follow_up_report(
            session=uow, clinic_id=actor.clinic_id, period=(args.get("start"), args.get("end")), now=now
        )


@blp.route("/sequences/<int:sequence_id>/steps/<int:index>/variants")
class StepVariants(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.VariantStatsArgs, location="query")
    @blp.response(200, schemas.VariantStatsOut)
    @inject
    def get(self, args, sequence_id, index, *, uow, actor, now):
        """Per variant of the step (0-based index): sent, replied, consultations booked and conversions
        within the window, with rates and a two-sided p-value of conversion against the best variant.
        Conversion is the judge; the reply rate is shown, not judged on."""
        return variants.variant_stats(
            session=uow,
            clinic_id=actor.clinic_id,
            sequence_id=sequence_id,
            index=index,
            window_days=args["window_days"],
            now=now,
        )


@blp.route("/sequences/<int:sequence_id>/steps/<int:index>/keep-variant")
class KeepVariant(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.KeepVariantIn)
    @blp.response(200, schemas.SequenceOut)
    @inject
    def post(self, body, sequence_id, index, *, uow, actor, now):
        """Make one variant the step's only version: its texts become the step's; leads scheduled from
        now on all get it (a step already scheduled keeps its copy)."""
        return variants.keep_only(
            session=uow,
            actor=actor,
            sequence_id=sequence_id,
            index=index,
            key=body["key"],
            now=now,
        )


@blp.route("/follow-up-passes")
class FollowUpPasses(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.FollowUpPassArgs, location="query")
    @blp.response(200, schemas.FollowUpPassOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """The clinic's follow-up passes, newest first: each window's leads selected, sent and
        skipped (with why)."""
        return follow_up_pass.list_passes(session=uow, clinic_id=actor.clinic_id, limit=args["limit"])
