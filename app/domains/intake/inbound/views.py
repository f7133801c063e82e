"""The signed webhooks by which leads reach the clinic besides a form: inbound SMS and email, caller ID."""

from __future__ import annotations

from flask import Response, g, request
from flask.views import MethodView

from app.domains.auth import signing
from app.domains.auth.signing_secrets.guard import signed_for
from app.domains.intake.inbound import (
    caller_id,
    email_replies,
    schemas,
    sendgrid,
    shared_sender,
    twilio,
    unknown_senders,
)
from app.domains.intake.inbound import messages as inbound
from app.domains.leads.schemas import LeadCreatedOut, LeadIn
from app.platform.access import platform_only, public, requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission

blp = make_blueprint("inbound", "Inbound messages (replies, STOP) and calls")


@blp.route("/capture/inbound")
class InboundWebhook(MethodView):
    @public("HMAC signature: a signing secret of the clinic with the inbound scope")
    @signed_for(signing.Scope.INBOUND)
    @blp.arguments(schemas.InboundIn)
    @blp.response(200, schemas.ReceivedOut)
    @blp.alt_response(401, description="Missing, wrong, stale or replayed signature, or unknown clinic")
    @blp.alt_response(403, description="Signed by a secret without this endpoint's scope")
    @inject
    def post(self, message, *, uow, now):
        """An inbound SMS or email: logged on the lead it came from (once per message_id), which stops
        the lead's sequences and pending automated outreach; an SMS STOP opts the lead out of SMS.
        An unknown sender's message waits in the team inbox as an unknown sender's conversation
        (GET /api/conversations?view=unassigned). The answer is {"received": true} either way: it
        does not say whether the sender is a lead's."""
        inbound.receive(session=uow, clinic_id=g.signed_clinic_id, message=message, now=now)
        return {"received": True}


@blp.route("/capture/call")
class CallerIdWebhook(MethodView):
    @public("HMAC signature: a signing secret of the clinic with the call scope")
    @signed_for(signing.Scope.CALL)
    @blp.arguments(schemas.CallIn)
    @blp.response(200, schemas.ReceivedOut)
    @blp.alt_response(401, description="Missing, wrong, stale or replayed signature, or unknown clinic")
    @blp.alt_response(403, description="Signed by a secret without this endpoint's scope")
    @inject
    def post(self, call, *, uow, now):
        """Caller ID: an inbound call, logged as an INBOUND PHONE_CALL (contact) on the open lead with
        that number, or on a new lead (source "Phone"); once per call_id. The answer is
        {"received": true} either way: it does not say whether the number was a lead's."""
        caller_id.receive_call(session=uow, clinic_id=g.signed_clinic_id, call=call, now=now)
        return {"received": True}


@blp.route("/providers/twilio/sms")
class TwilioInboundSms(MethodView):
    @public("signed by Twilio: X-Twilio-Signature with the account's auth token (SMS_TOKEN)")
    @blp.response(200, content_type="text/xml")
    @blp.alt_response(401, description="Missing or bad X-Twilio-Signature")
    @blp.alt_response(404, description="Twilio webhooks are not configured (SMS_TOKEN)")
    @inject
    def post(self, *, uow, now, settings):
        """An inbound SMS as Twilio posts it (form: To, From, Body, MessageSid): routed to the clinic
        the platform operator assigned the Messaging Service or number it went to, recorded on the
        lead with that `From`; STOP opts the number out for the whole clinic, START/UNSTOP back in,
        HELP is answered with the clinic's help text. The shared SMS_FROM is no clinic's own: to it,
        STOP and START apply in every clinic sending from it, and any other text is the clinic's that
        last texted that phone from it, else it waits in the platform operator's queue.
        A MessageSid acts once: a replay is answered and does nothing. Answers TwiML."""
        form = signing.twilio_form(settings=settings, request=request)
        answer = twilio.receive_sms(session=uow, form=form, settings=settings, now=now)
        return Response(answer, status=200, mimetype="text/xml")


@blp.route("/providers/sendgrid/events")
class SendgridEvents(MethodView):
    @public("signed by SendGrid: ECDSA X-Twilio-Email-Event-Webhook-Signature (SENDGRID_EVENT_PUBLIC_KEY)")
    @blp.response(200)
    @blp.alt_response(401, description="Missing or bad signature")
    @blp.alt_response(404, description="Not configured (SENDGRID_EVENT_PUBLIC_KEY)")
    @blp.alt_response(422, description="The body is not a JSON array of events")
    @inject
    def post(self, *, uow, now, settings):
        """SendGrid's Event Webhook (a JSON array): a hard bounce, a drop or a spam complaint opts
        every lead with that address out of email (a bounce or drop is also `message.bounced`);
        `delivered` and `open` stamp the email's delivered_at and opened_at. An event seen before
        (its sg_event_id), without one, or whose timestamp is over 48 h old is ignored (`ignored`)."""
        body = request.get_data(cache=True)
        events = sendgrid.verify(
            public_key=settings.sendgrid_event_public_key,
            body=body,
            signature=request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
            timestamp=request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"),
        )
        return sendgrid.apply_events(session=uow, events=events, now=now)


@blp.route("/providers/sendgrid/inbound/<secret>")
class SendgridInboundParse(MethodView):
    @public("the secret in the URL (SENDGRID_INBOUND_SECRET), as SendGrid's Inbound Parse is configured")
    @blp.response(200)
    @blp.alt_response(404, description="Not configured, or a wrong secret")
    @inject
    def post(self, secret, *, uow, now, settings):
        """A lead's reply by email (multipart: from, to, subject, text, html, headers), to the reply
        address of its emails: logged as an INBOUND email (contact); an auto-reply only as a note.
        An email to the List-Unsubscribe mailto (unsubscribe+<token>@) opts its lead out of email."""
        email_replies.check_secret(settings.sendgrid_inbound_secret, secret)
        return email_replies.receive(
            session=uow, secret=settings.secret_key, form=request.form.to_dict(), now=now
        )


@blp.route("/conversations/<int:conversation_id>/capture")
class CaptureUnknownSender(MethodView):
    @requires(Permission.CREATE)
    @idempotent
    @blp.arguments(LeadIn(partial=("phone", "email")))
    @blp.response(201, LeadCreatedOut)
    @blp.alt_response(409, description="The conversation is already a lead's")
    @inject
    def post(self, body, conversation_id, *, uow, actor, now):
        """Capture an unknown sender as a new lead: the lead (names and any field of POST /api/leads)
        gets the sender's number or address, is created like every lead (owner, first stage,
        possible duplicates, the new-lead automation) and the sender's messages become its thread."""
        made = unknown_senders.capture(
            session=uow, actor=actor, conversation_id=conversation_id, data=body, now=now
        )
        made.lead.possible_duplicates = made.possible_duplicates  # for this response only
        return made.lead


@blp.route("/platform/unclaimed-messages")
class UnclaimedMessages(MethodView):
    @platform_only
    @blp.response(200, schemas.UnclaimedMessageOut(many=True))
    @inject
    def get(self, *, uow):
        """The platform operator's queue: texts and WhatsApp messages to the shared sender from a
        phone no clinic texted from it within SHARED_SENDER_REPLY_DAYS, oldest first."""
        return shared_sender.waiting(uow)


@blp.route("/platform/unclaimed-messages/<int:message_id>/clinic")
class HandUnclaimedMessage(MethodView):
    @platform_only
    @blp.arguments(schemas.HandToClinicIn)
    @blp.response(200, schemas.HandedOut)
    @blp.alt_response(404, description="No such waiting message, or no such clinic (`clinic_id`)")
    @blp.alt_response(409, description="Handed to a clinic already")
    @inject
    def post(self, body, message_id, *, uow, now):
        """Hand a waiting message to the clinic it is for: it joins the thread of that clinic's lead
        with the number (else an unknown sender's conversation in its inbox), and the queue keeps
        no copy of its sender or text."""
        return shared_sender.hand_to_clinic(
            session=uow, unclaimed_id=message_id, clinic_id=body["clinic_id"], now=now
        )
