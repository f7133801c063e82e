"""An Instagram user's public profile (username, name) from the Graph API, with the clinic's token.

GET {INSTAGRAM_GRAPH_URL}/{version}/{IGSID}?fields=username,name (the User Profile API of the
Instagram API with Instagram Login). A profile that cannot be read (the user restricted it, Graph is
down) is not a reason to lose the message: the lead is made without a name, and the handle stays
unknown.
"""

from __future__ import annotations

import logging
import urllib.parse

import httpx

from app.domains.auth.instagram import service as instagram

log = logging.getLogger(__name__)
PROFILE_TIMEOUT = 5.0  # seconds: the webhook waits for it, and Meta wants its answer quickly


def fetch_profile(*, settings, igsid: str, token: str) -> dict:
    """{"username": ..., "name": ...} as far as Graph tells; {} when it cannot be read."""
    base = settings.instagram_graph_url.rstrip("/")
    url = f"{base}/{instagram.GRAPH_VERSION}/{urllib.parse.quote(igsid, safe='')}"
    try:
        answer = httpx.get(
            url,
            params={"fields": "username,name"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=PROFILE_TIMEOUT,
        )
        answer.raise_for_status()
        found = answer.json()
    except (httpx.HTTPError, ValueError) as error:
        # Never the IGSID nor anything of the person: the kind of failure only.
        log.warning(
            "Instagram profile unreadable (%s): the lead is made without a name", type(error).__name__
        )
        return {}
    return {key: str(found[key])[:64] for key in ("username", "name") if found.get(key)}
