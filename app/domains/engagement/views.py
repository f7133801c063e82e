"""The family's side of engagement (the redirect of a tracked link, the open pixel) and a lead's
engagement as the clinic sees it."""

from __future__ import annotations

import base64

from flask import Response, redirect, request
from flask.views import MethodView

from app.domains.engagement import schemas, service
from app.domains.engagement import stats as engagement_stats
from app.platform.access import public, requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.app_db import get_db
from app.platform.errors import NotFound
from app.platform.roles import Permission

blp = make_blueprint("engagement", "Tracked links, opens and a lead's engagement")
family = make_blueprint("engagement_links", "The tracked links and open pixel in messages to leads")
family.url_prefix = None  # short links at the public base URL: /r/<token>, /o/<token>.gif

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Link not valid</title></head>
<body><main><h1>Link not valid</h1><p>This link is not valid. Use the link in your most recent message
from the clinic.</p></main></body></html>"""
HTML_PAGE = {"schema": {"type": "string"}, "content_type": "text/html"}
_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1x1, transparent


@family.route("/r/<token>")
class TrackedLink(MethodView):
    @public("the signed token in the URL: a link in a message the clinic sent the lead")
    @family.response(302, description="To the link's own URL, as the message had it")
    @family.alt_response(404, description="Not a valid link: a page saying so", **HTML_PAGE)
    @inject
    def get(self, token, *, uow, now):
        """Follow a tracked link: the click is recorded and the browser sent on to the URL the
        stored message had at that place (never a URL from the request)."""
        try:
            url = service.follow(session=uow, secret=get_db().settings.secret_key, token=token, now=now)
        except NotFound:
            return Response(_PAGE, status=404, mimetype="text/html")
        answer = redirect(url, code=302)
        answer.headers["Cache-Control"] = "no-store"  # every click comes to us
        answer.headers["Referrer-Policy"] = "no-referrer"  # the token stays ours
        return answer


@family.route("/o/<token>.gif")
class OpenPixel(MethodView):
    @public("the signed token in the URL: the open pixel of an email the clinic sent the lead")
    @family.response(200, content_type="image/gif", description="A transparent 1x1 GIF, always")
    @inject
    def get(self, token, *, uow, now):
        """The open of the email the token names (a mail proxy's fetch marked as a machine's)."""
        service.pixel_fetched(
            session=uow,
            secret=get_db().settings.secret_key,
            token=token,
            user_agent=request.headers.get("User-Agent"),
            now=now,
        )
        return Response(_GIF, mimetype="image/gif", headers={"Cache-Control": "no-store, private"})


@blp.route("/leads/<int:lead_id>/engagement")
class LeadEngagement(MethodView):
    @requires(Permission.READ)
    @blp.response(200, schemas.LeadEngagementOut)
    @inject
    def get(self, lead_id, *, uow, actor):
        """What the lead did with the messages it was sent: each email's opens (a person's, a mail
        proxy's) and each link's clicks, newest message first."""
        return engagement_stats.of_lead(session=uow, actor=actor, lead_id=lead_id)


@blp.route("/engagement/stats")
class EngagementStats(MethodView):
    @requires(Permission.ANALYTICS)
    @blp.arguments(schemas.EngagementStatsArgs, location="query")
    @blp.response(200, schemas.EngagementStatsOut)
    @inject
    def get(self, args, *, uow, actor):
        """The delivery stats' engagement: messages to leads sent since `since`, opened and clicked."""
        return engagement_stats.of_clinic(session=uow, actor=actor, since=args["since"])
