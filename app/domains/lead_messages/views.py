"""Message templates (CRUD, preview) and a one-off message to a lead."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView

from app.domains.lead_messages import pause, replies, schemas, send, unsubscribe
from app.domains.lead_messages import templates as service
from app.platform.access import public, requires
from app.platform.api import check_if_match, make_blueprint, with_etag
from app.platform.api.injection import inject
from app.platform.app_db import get_db
from app.platform.errors import NotFound
from app.platform.idempotency.web import idempotent
from app.platform.roles import Permission

blp = make_blueprint("messaging", "Message templates and one-off messages to leads")


@blp.route("/message-templates")
class MessageTemplates(MethodView):
    # Reading is lead:read: a coordinator picks a template when writing to a lead.
    @requires(Permission.READ)
    @blp.arguments(schemas.TemplateQueryArgs, location="query")
    @blp.response(200, schemas.MessageTemplateStatsOut(many=True))
    @inject
    def get(self, args, *, uow, actor):
        """The clinic's message templates, with their usage and reply counts."""
        return service.list_with_counts(session=uow, clinic_id=actor.clinic_id, channel=args.get("channel"))

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.MessageTemplateIn)
    @blp.response(201, schemas.MessageTemplateOut)
    @blp.alt_response(409, description="A template of that name exists")
    @inject
    def post(self, body, *, uow, actor, now):
        """Create an email or SMS template; its merge fields are checked now."""
        return service.create_template(session=uow, actor=actor, data=body, now=now)


@blp.route("/message-templates/<int:template_id>")
class MessageTemplateById(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.MessageTemplateStatsOut)
    @inject
    def get(self, template_id, *, uow, actor):
        """One template, with its usage and reply counts."""
        template = service.get_with_counts(session=uow, clinic_id=actor.clinic_id, template_id=template_id)
        return with_etag(template, schemas.MessageTemplateOut())

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.MessageTemplateUpdateIn)
    @blp.response(200, schemas.MessageTemplateOut)
    @blp.alt_response(409, description="A template of that name exists")
    @blp.alt_response(412, description="If-Match does not match the current ETag")
    @inject
    def put(self, body, template_id, *, uow, actor, now):
        """Change a template's name or texts; the next message made from it uses them."""
        current = service.get_template(session=uow, clinic_id=actor.clinic_id, template_id=template_id)
        check_if_match(current, schemas.MessageTemplateOut())
        template = service.update_template(
            session=uow, actor=actor, template_id=template_id, data=body, now=now
        )
        return with_etag(template, schemas.MessageTemplateOut())

    @requires(Permission.CONFIGURE)
    @blp.response(204)
    @inject
    def delete(self, template_id, *, uow, actor, now):
        """Delete a template: rules and sequences naming it skip their message (on the why-trail)."""
        service.delete_template(session=uow, actor=actor, template_id=template_id, now=now)


@blp.route("/message-templates/<int:template_id>/preview")
class MessageTemplatePreview(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.PreviewIn)
    @blp.response(200, schemas.PreviewOut)
    @inject
    def post(self, body, template_id, *, uow, actor, now):
        """The template rendered for a lead of the clinic, or for a sample lead."""
        return service.preview(
            session=uow,
            actor=actor,
            template_id=template_id,
            lead_id=body.get("lead_id"),
            now=now,
        )


@blp.route("/leads/<int:lead_id>/messages")
class LeadMessages(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.LeadMessageIn)
    @blp.response(201, schemas.LeadMessageOut)
    @blp.alt_response(409, description="The contact policy holds it back, or the lead is converted")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Send the lead an email or SMS (a template or texts) through the contact policy; on the timeline.
        With an Idempotency-Key a repeated request (a double click, a client's retry) sends once."""
        return send.send_message(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            data=body,
            now=now,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )


@blp.route("/leads/<int:lead_id>/conversation/messages")
class ConversationReply(MethodView):
    @requires(Permission.UPDATE)
    @idempotent
    @blp.arguments(schemas.ConversationReplyIn)
    @blp.response(201, schemas.LeadMessageOut)
    @blp.alt_response(409, description="The contact policy holds it back, or the lead is converted")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Reply to the family from the lead's conversation, on `channel` or the channel of the
        family's last message: through the contact policy, in the transactional lane, once per
        Idempotency-Key. The reply is in the thread at once, its status following the provider's."""
        return replies.reply(
            session=uow,
            actor=actor,
            lead_id=lead_id,
            data=body,
            now=now,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )


_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Unsubscribe</title></head>
<body><main><h1>{title}</h1><p>{text}</p>{form}</main></body></html>"""
# A person opens the link: every answer, an invalid link's 404 too, is a page, documented as one.
HTML_PAGE = {"schema": {"type": "string"}, "content_type": "text/html"}
_FORM = """<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit">Unsubscribe</button></form>"""


@blp.route("/unsubscribe/<token>")
class OneClickUnsubscribe(MethodView):
    @public("the signed token in the URL: the link in List-Unsubscribe of the lead's emails")
    @blp.response(200, content_type="text/html")
    @blp.alt_response(404, description="Not a valid unsubscribe link: a page saying so", **HTML_PAGE)
    @inject
    def get(self, token, *, uow):
        """A small confirmation page: a GET (a link scanner, a preview) never unsubscribes."""
        try:
            unsubscribe.lead_of(session=uow, secret=_secret(), token=token)
        except NotFound:
            return _not_valid()
        page = _PAGE.format(title="Unsubscribe", text="Stop receiving these emails?", form=_FORM)
        return Response(page, mimetype="text/html")

    @public("the signed token in the URL: the link in List-Unsubscribe of the lead's emails")
    @blp.response(200, content_type="text/html")
    @blp.alt_response(404, description="Not a valid unsubscribe link: a page saying so", **HTML_PAGE)
    @inject
    def post(self, token, *, uow, now):
        """RFC 8058 one-click (form `List-Unsubscribe=One-Click`): the lead is opted out of email,
        audited; again changes nothing."""
        try:
            unsubscribe.unsubscribe(session=uow, secret=_secret(), token=token, now=now)
        except NotFound:
            return _not_valid()
        page = _PAGE.format(title="Unsubscribed", text="You will not receive these emails any more.", form="")
        return Response(page, mimetype="text/html")


def _not_valid() -> Response:
    """A person clicked the link: a page that says so, not an API error body."""
    text = "This unsubscribe link is not valid. Use the link in your most recent email from the clinic."
    page = _PAGE.format(title="Link not valid", text=text, form="")
    return Response(page, status=404, mimetype="text/html")


def _secret() -> str | None:
    return get_db().settings.secret_key


def _out(state: dict) -> dict:
    return {"starts": state["from"], "until": state["until"], "active": state["active"]}


@blp.route("/clinic/outreach-pause")
class OutreachPause(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.OutreachPauseOut)
    @inject
    def get(self, *, uow, actor, now):
        """The clinic's outreach pause, if any."""
        return _out(pause.current(session=uow, actor=actor, now=now))

    @requires(Permission.CONFIGURE)
    @blp.arguments(schemas.OutreachPauseIn)
    @blp.response(200, schemas.OutreachPauseOut)
    @inject
    def post(self, body, *, uow, actor, now):
        """Pause every automated message to leads from `from` until `until` (or until resumed): held
        ones go once after it, shifted; reminders that would go after their consultation are dropped."""
        starts = body.get("starts") or now
        return _out(pause.pause(session=uow, actor=actor, starts=starts, until=body.get("until"), now=now))

    @requires(Permission.CONFIGURE)
    @blp.response(200, schemas.OutreachPauseOut)
    @inject
    def delete(self, *, uow, actor, now):
        """Resume the clinic's automated outreach."""
        return _out(pause.resume(session=uow, actor=actor, now=now))
