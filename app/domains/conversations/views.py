"""A lead's conversation (its thread, read marks), the team inbox, and linking an unknown sender's
thread to a lead. A reply from the thread is sent by app/domains/lead_messages (its contact policy)."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView

from app.domains.conversations import inbox, linking, resolution, schemas, threads
from app.domains.conversations.models import OPEN, RESOLVED
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = make_blueprint("conversations", "Conversations with families and the team inbox")


@blp.route("/leads/<int:lead_id>/conversation")
class LeadConversation(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.PageArgs, location="query")
    @blp.response(200, schemas.ThreadOut)
    @inject
    def get(self, args, lead_id, *, uow, actor, now):
        """The lead's thread across SMS and email, both directions, newest first (cursor-paginated),
        each message with its delivery status as the provider reported it, and the caller's unread
        count. Message texts are PHI: without `lead:phi` they are left out. The read is audited."""
        page = (args.get("cursor"), args["limit"])
        return threads.thread_page(session=uow, actor=actor, lead_id=lead_id, page=page, now=now)


@blp.route("/leads/<int:lead_id>/conversation/read")
class LeadConversationRead(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.ReadIn)
    @blp.response(200, schemas.ReadOut)
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """The caller has read the thread up to `message_id` (default: its last message). Read
        marks are each staff member's own; a mark never goes back."""
        return threads.mark_read(
            session=uow, actor=actor, lead_id=lead_id, up_to=body.get("message_id"), now=now
        )


@blp.route("/leads/<int:lead_id>/conversation/resolve")
class ResolveLeadConversation(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.StatusOut)
    @blp.alt_response(409, description="The lead has no conversation yet")
    @inject
    def post(self, lead_id, *, uow, actor, now):
        """Mark the lead's conversation resolved: nothing is left to answer, and the inbox's `status=open`
        leaves it out. The family's next message reopens it. Resolving a resolved one changes nothing."""
        return resolution.set_status(session=uow, actor=actor, lead_id=lead_id, status=RESOLVED, now=now)


@blp.route("/leads/<int:lead_id>/conversation/reopen")
class ReopenLeadConversation(MethodView):
    @requires(Permission.UPDATE)
    @blp.response(200, schemas.StatusOut)
    @blp.alt_response(409, description="The lead has no conversation yet")
    @inject
    def post(self, lead_id, *, uow, actor, now):
        """Open the lead's resolved or snoozed conversation again (back in the inbox's `status=open`)."""
        return resolution.set_status(session=uow, actor=actor, lead_id=lead_id, status=OPEN, now=now)


@blp.route("/leads/<int:lead_id>/conversation/snooze")
class SnoozeLeadConversation(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.ConversationSnoozeIn)
    @blp.response(200, schemas.StatusOut)
    @blp.alt_response(409, description="The lead has no conversation yet")
    @inject
    def post(self, body, lead_id, *, uow, actor, now):
        """Snooze the lead's conversation until `until` (a time ahead, else 422): it leaves the
        inbox's `status=open` for `status=snoozed` until then, or until the family's next message.
        Reopening it (`/reopen`) ends the snooze; so does resolving it."""
        return resolution.snooze(session=uow, actor=actor, lead_id=lead_id, until=body["until"], now=now)


@blp.route("/conversations")
class Inbox(MethodView):
    @requires(Permission.READ)
    @blp.arguments(schemas.InboxArgs, location="query")
    @blp.response(200, schemas.InboxOut)
    @inject
    def get(self, args, *, uow, actor, now):
        """The team inbox, the most recent activity first (cursor-paginated): `view` mine (your
        leads), unassigned (leads without an owner, unknown senders) or all; `unread` (the family
        wrote after your read mark); `channel` (the family last wrote on it); `status` open or
        resolved, or snoozed (put away until a time not yet come: not in `open`; default: all)."""
        return inbox.inbox_page(
            session=uow, actor=actor, filters=args, cursor=args.get("cursor"), limit=args["limit"], now=now
        )


@blp.route("/conversations/<int:conversation_id>/link")
class LinkConversation(MethodView):
    @requires(Permission.UPDATE)
    @blp.arguments(schemas.LinkIn)
    @blp.response(200, schemas.LinkOut)
    @blp.alt_response(409, description="The conversation is already a lead's")
    @inject
    def post(self, body, conversation_id, *, uow, actor, now):
        """Link an unknown sender's thread to the lead it belongs to: its messages join the lead's thread."""
        return linking.link(
            session=uow, actor=actor, conversation_id=conversation_id, lead_id=body["lead_id"], now=now
        )


# Served from the engine's origin: only a picture or a video is shown inline; anything else the
# provider labelled (text/html, an SVG with script) is a download that runs nothing.
_INLINE = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "video/mp4", "video/quicktime")
_MEDIA = {"schema": {"type": "string", "format": "binary"}}


@blp.route("/leads/<int:lead_id>/conversation/messages/<int:message_id>/media/<int:n>")
class MessageMedia(MethodView):
    @requires(Permission.READ)
    @blp.response(200, content_type="application/octet-stream", description="The image or video's bytes")
    @blp.alt_response(502, description="The provider did not give it (gone, too large, not its own host)")
    @inject
    def get(self, *, uow, actor, now, settings, **path):
        """The `n`-th image or video (from 0) of the family's message, fetched from the provider's own
        host (Twilio's, Meta's CDN) with a timeout and a size cap and streamed with the type the
        provider gave; a URL on any other host is never fetched. A family's photo is PHI: a reader
        without `lead:phi` (front desk) gets 403. Another clinic's lead, a message of another
        thread: 404."""
        ref = (path["lead_id"], path["message_id"], path["n"])
        fetched = threads.open_media(session=uow, actor=actor, ref=ref, settings=settings, now=now)
        return media_response(fetched)


def media_response(fetched) -> Response:
    """A fetched image or video as an answer from the engine's origin (the API's and the staff
    workspace's): never cached, never sniffed, sandboxed, inline only when a picture or a video."""
    inline = fetched.content_type in _INLINE
    headers = {
        "Cache-Control": "no-store, private",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Content-Disposition": "inline" if inline else "attachment",
    }
    if fetched.length is not None:
        headers["Content-Length"] = str(fetched.length)
    mimetype = fetched.content_type if inline else "application/octet-stream"
    return Response(fetched.chunks, mimetype=mimetype, headers=headers)
