"""The family's booking page (issue 62): public, server-rendered pages under /book over the
booking_page domain's services. Framed only by the clinic's own website origins; its posts are
limited per client address (the limiter of app/platform/ratelimit.py)."""

from __future__ import annotations

from flask_limiter.util import get_remote_address

BOOKING_PREFIX = "/book"
# Bookings, moves and cancels per client address a minute (on top of the API's default limit): a
# family posts once or twice; a bot trying slots or names is stopped after a few.
POSTS_PER_MINUTE = 10


def init_booking_page(app) -> None:
    from app.booking_page.views import blp

    limiter = app.extensions.get("followup.limiter")
    if limiter is not None:  # None: limits switched off (FOLLOWUP_RATE_LIMIT_PER_MINUTE=0)
        limiter.limit(
            f"{POSTS_PER_MINUTE} per minute",
            key_func=lambda: f"booking:{get_remote_address()}",
            methods=["POST"],
            override_defaults=False,
        )(blp)
    app.register_blueprint(blp, url_prefix=BOOKING_PREFIX)
