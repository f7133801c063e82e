"""Consultation endpoints: book, list (a lead's, a day's), reschedule, cancel, check in, no-show;
the booking system's signed appointment webhook; a lead's recalls and long timers."""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from app.domains.auth import signing
from app.domains.auth.signing_secrets.guard import signed_for
from app.domains.consultations import appointments, listing, schemas, service, timers
from app.domains.consultations.models import TimerKind
from app.platform.access import public, requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("consultations", "Consultations: booked, reminded, checked in or missed")
# The 409 (invalid_transition) of a change a consultation in its state cannot take.
NOT_SCHEDULED = "The consultation is not scheduled (cancelled, attended or missed already)"


@blp.route("/leads/<int:lead_id>/consultations")
class LeadConsultations(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ConsultationOut(many=True))
    @inject
    def get(self, lead_id, *, uow, actor):
        """The lead's consultations, newest first."""
        return listing.of_lead(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)

    @requires(Permission.CREATE)
    @blp.arguments(schemas.ConsultationIn)
    @blp.response(201, schemas.ConsultationOut)
    @blp.alt_response(
        409,
        description="The lead is closed (lead_closed), external_id is booked already, or the provider"
        " holds that time (slot_taken; errors: clash, alternatives)",
    )
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Book a consultation: the lead moves to consultation_scheduled (once); the confirmation,
        the reminders and the no-show check follow."""
        return service.book(
            session=uow, actor=actor, lead_id=lead_id, booking=service.Booking(**body), now=now
        )


@blp.route("/consultations")
class DayConsultations(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.DayArgs, location="query")
    @blp.response(200, schemas.ConsultationOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """The clinic's consultations of one local day, earliest first."""
        return listing.of_day(
            session=uow, clinic_id=actor.clinic_id, day=args["date"], status=args.get("status")
        )


@blp.route("/consultations/<int:consultation_id>")
class OneConsultation(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.ConsultationOut)
    @inject
    def get(self, consultation_id, *, uow, actor):
        """One consultation."""
        return service.get_consultation(
            session=uow, clinic_id=actor.clinic_id, consultation_id=consultation_id
        )

    @requires(Permission.CREATE)
    @blp.arguments(schemas.ConsultationChangeIn)
    @blp.response(200, schemas.ConsultationOut)
    @blp.alt_response(409, description=NOT_SCHEDULED)
    @inject
    def put(self, body, consultation_id, *, uow, actor, now):
        """Reschedule: a new start replaces the old time's pending reminders and no-show check."""
        return service.reschedule(
            session=uow, actor=actor, consultation_id=consultation_id, changes=body, now=now
        )


@blp.route("/consultations/<int:consultation_id>/cancel")
class CancelConsultation(MethodView):
    @requires(Permission.CREATE)
    @blp.response(200, schemas.ConsultationOut)
    @blp.alt_response(409, description=NOT_SCHEDULED)
    @inject
    def post(self, consultation_id, *, uow, actor, now):
        """Cancel: its pending reminders and no-show check end."""
        return service.cancel(session=uow, actor=actor, consultation_id=consultation_id, now=now)


@blp.route("/consultations/<int:consultation_id>/check-in")
class CheckIn(MethodView):
    @requires(Permission.CREATE)
    @blp.arguments(schemas.CheckInIn)
    @blp.response(200, schemas.ConsultationOut)
    @blp.alt_response(409, description="The consultation is cancelled or attended already")
    @blp.alt_response(
        422, description="checked_in_at is not a time, or (default now) is before the consultation starts"
    )
    @inject
    def post(self, body, consultation_id, *, uow, actor, now):
        """The family arrived (also after a no-show: its call task is cancelled if still open)."""
        return service.check_in(
            session=uow, actor=actor, consultation_id=consultation_id, now=now, at=body.get("checked_in_at")
        )


@blp.route("/consultations/<int:consultation_id>/no-show")
class NoShow(MethodView):
    @requires(Permission.CREATE)
    @blp.response(200, schemas.ConsultationOut)
    @blp.alt_response(409, description=NOT_SCHEDULED)
    @inject
    def post(self, consultation_id, *, uow, actor, now):
        """Mark a scheduled consultation missed: logged on the timeline; the urgent call task follows."""
        return service.mark_no_show(session=uow, actor=actor, consultation_id=consultation_id, now=now)


@blp.route("/capture/appointment")
class AppointmentWebhook(MethodView):
    @public("HMAC signature: a signing secret of the clinic with the appointment scope")
    @signed_for(signing.Scope.APPOINTMENT)
    @blp.arguments(schemas.AppointmentIn)
    @blp.response(201, schemas.AppointmentOut)
    @blp.alt_response(
        200, schema=schemas.AppointmentOut, success=True, description="An appointment already known"
    )
    @blp.alt_response(401, description="Missing, wrong, stale or replayed signature, or unknown clinic")
    @blp.alt_response(403, description="Signed by a secret without the appointment scope")
    @blp.alt_response(404, description="No open lead of the clinic matches lead_id, phone or email")
    @blp.alt_response(
        409,
        description="The lead is closed (lead_closed), or the provider holds that time (slot_taken;"
        " errors: clash, alternatives)",
    )
    @inject
    def post(self, body, *, uow, now):
        """A booking system's appointment event (booked, moved, cancelled, attended, no-show), applied
        once and in the booking system's order (HMAC-signed by the clinic like a web form)."""
        result = appointments.capture_appointment(
            session=uow, clinic_id=g.signed_clinic_id, appointment=appointments.appointment_of(body), now=now
        )
        answer = {
            "consultation_id": result.consultation.id,
            "status": result.consultation.status,
            "applied": result.applied,
        }
        return answer, 201 if result.created else 200


@blp.route("/leads/<int:lead_id>/recalls")
class LeadRecalls(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TimerOut(many=True))
    @inject
    def get(self, lead_id, *, uow, actor):
        """The lead's recalls (scheduled, done or cancelled, and why), soonest first."""
        return timers.of_lead(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id, kind=TimerKind.RECALL)

    @requires(Permission.CREATE)
    @blp.arguments(schemas.RecallIn)
    @blp.response(201, schemas.TimerOut)
    @blp.alt_response(409, description="The lead is closed (lead_closed)")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Recall the lead on a local date or in N months: on that day, at the clinic's opening, a call
        task for the coordinator and a text to the family."""
        return timers.schedule_recall(
            session=uow, actor=actor, lead_id=lead_id, ask=timers.RecallAsk(**body), now=now
        )


@blp.route("/leads/<int:lead_id>/timers")
class LeadTimers(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.TimerOut(many=True))
    @inject
    def get(self, lead_id, *, uow, actor):
        """Every long timer of the lead: recalls, the records expiry reminder, benefits reset nudges."""
        return timers.of_lead(session=uow, clinic_id=actor.clinic_id, lead_id=lead_id)


@blp.route("/recalls/<int:recall_id>/cancel")
class CancelRecall(MethodView):
    @requires(Permission.CREATE)
    @blp.response(200, schemas.TimerOut)
    @blp.alt_response(409, description="The recall is done or cancelled already")
    @inject
    def post(self, recall_id, *, uow, actor, now):
        """Cancel a scheduled recall: its ledger job ends and nothing goes."""
        return timers.cancel_recall(session=uow, actor=actor, recall_id=recall_id, now=now)
