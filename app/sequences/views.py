"""Sequence endpoints: sequences, a lead's enrollments, and their statistics."""

from __future__ import annotations

from flask.views import MethodView

from app import clock
from app.access import current_actor, requires
from app.api import check_if_match, make_blueprint, with_etag
from app.app_db import unit_of_work
from app.auth.roles import Permission
from app.automation.schemas import StatsArgs
from app.sequences import schemas, stats, variants
from app.sequences import service as sequences

blp = make_blueprint("sequences", "Sequences and enrollments")


@blp.route("/sequences")
class Sequences(MethodView):
    # Reading is lead:read: a coordinator picks a sequence when enrolling a lead.
    @requires(Permission.READ)
    @blp.response(200, schemas.SequenceOut(many=True))
    def get(self):
        """The clinic's sequences."""
        with unit_of_work() as session:
            return sequences.list_sequences(session=session, clinic_id=current_actor().clinic_id)

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SequenceIn)
    @blp.response(201, schemas.SequenceOut)
    @blp.alt_response(409, description="A sequence of that name exists")
    def post(self, body):
        """Create a sequence: steps of a delay, then an email, an SMS or a call task."""
        with unit_of_work() as session:
            return sequences.create_sequence(
                session=session, actor=current_actor(), data=body, now=clock.now()
            )


@blp.route("/sequences/<int:sequence_id>")
class SequenceById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.SequenceOut)
    def get(self, sequence_id):
        """One sequence."""
        with unit_of_work() as session:
            sequence = sequences.get_sequence(
                session=session, clinic_id=current_actor().clinic_id, sequence_id=sequence_id
            )
            return with_etag(sequence, schemas.SequenceOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.SequenceUpdateIn)
    @blp.response(200, schemas.SequenceOut)
    @blp.alt_response(409, description="A sequence of that name exists")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    def put(self, body, sequence_id):
        """Change a sequence; running enrollments follow the new steps from their next step on."""
        actor = current_actor()
        with unit_of_work() as session:
            current = sequences.get_sequence(
                session=session, clinic_id=actor.clinic_id, sequence_id=sequence_id, for_update=True
            )
            check_if_match(current, schemas.SequenceOut())
            sequence = sequences.update_sequence(
                session=session, actor=actor, sequence_id=sequence_id, data=body, now=clock.now()
            )
            return with_etag(sequence, schemas.SequenceOut())


@blp.route("/leads/<int:lead_id>/enrollments")
class Enrollments(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.EnrollmentOut(many=True))
    def get(self, lead_id):
        """The lead's enrollments, newest first: status, current step, next step time, why it ended."""
        with unit_of_work() as session:
            return sequences.list_enrollments(session=session, actor=current_actor(), lead_id=lead_id)

    @requires(Permission.UPDATE)
    @blp.arguments(schemas.EnrollIn)
    @blp.response(201, schemas.EnrollmentOut)
    @blp.alt_response(409, description="Already enrolled, inactive sequence, closed or do-not-contact lead")
    def post(self, body, lead_id):
        """Enroll the lead in a sequence; its first step is scheduled (or runs now if it has no delay)."""
        with unit_of_work() as session:
            return sequences.enroll_by_hand(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                sequence_id=body["sequence_id"],
                now=clock.now(),
            )


@blp.route("/leads/<int:lead_id>/enrollments/<int:enrollment_id>/unenroll")
class Unenroll(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.EnrollmentOut)
    @blp.alt_response(409, description="The enrollment has already ended")
    def post(self, lead_id, enrollment_id):
        """End an active enrollment (reason "manual"); its pending step is cancelled."""
        with unit_of_work() as session:
            return sequences.unenroll_by_hand(
                session=session,
                actor=current_actor(),
                lead_id=lead_id,
                enrollment_id=enrollment_id,
                now=clock.now(),
            )


@blp.route("/sequences/stats")
class SequenceStats(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(StatsArgs, location="query")
    @blp.response(200, schemas.SequenceStatsOut(many=True))
    def get(self, args):
        """Per sequence: enrolled, active, completed, replied, unenrolled by reason, converted within 30
        days of enrolling."""
        with unit_of_work() as session:
            return stats.sequence_stats(
                session=session,
                clinic_id=current_actor().clinic_id,
                start=args.get("start"),
                end=args.get("end"),
            )


@blp.route("/sequences/<int:sequence_id>/steps/<int:index>/variants")
class StepVariants(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.VariantStatsArgs, location="query")
    @blp.response(200, schemas.VariantStatsOut)
    def get(self, args, sequence_id, index):
        """Per variant of the step (0-based index): sent, replied, consultations booked and conversions
        within the window, with rates and a two-sided p-value of conversion against the best variant.
        Conversion is the judge; the reply rate is shown, not judged on."""
        with unit_of_work() as session:
            return variants.variant_stats(
                session=session,
                clinic_id=current_actor().clinic_id,
                sequence_id=sequence_id,
                index=index,
                window_days=args["window_days"],
                now=clock.now(),
            )


@blp.route("/sequences/<int:sequence_id>/steps/<int:index>/keep-variant")
class KeepVariant(MethodView):
    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.KeepVariantIn)
    @blp.response(200, schemas.SequenceOut)
    def post(self, body, sequence_id, index):
        """Make one variant the step's only version: its texts become the step's; leads scheduled from
        now on all get it (a step already scheduled keeps its copy)."""
        with unit_of_work() as session:
            return variants.keep_only(
                session=session,
                actor=current_actor(),
                sequence_id=sequence_id,
                index=index,
                key=body["key"],
                now=clock.now(),
            )
