"""The family's booking page (issue 62): public, server-rendered pages under /book over the
booking_page domain's services. Framed only by the clinic's own website origins; its posts are
limited per client address (the limiter of app/platform/ratelimit.py)."""

from __future__ import annotations

from flask_limiter.util import get_remote_address

BOOKING_PREFIX = "/book"


def init_booking_page(app, settings) -> None:
    from app.booking_page.views import blp

    limiter = app.extensions.get("followup.limiter")
    if limiter is not None and settings.booking_page_posts_per_minute > 0:
        # Per address, on top of the default limit: a bot posting bookings is stopped after a few.
        limiter.limit(
            f"{settings.booking_page_posts_per_minute} per minute",
            key_func=lambda: f"booking:{get_remote_address()}",
            methods=["POST"],
            override_defaults=False,
        )(blp)
    app.register_blueprint(blp, url_prefix=BOOKING_PREFIX)
