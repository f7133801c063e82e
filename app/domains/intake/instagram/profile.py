"""An Instagram user's public profile (username, name) from the Graph API, with the clinic's token.

GET {INSTAGRAM_GRAPH_URL}/{version}/{IGSID}?fields=username,name (the User Profile API of the
Instagram API with Instagram Login). A profile that cannot be read (the user restricted it, Graph is
down) is not a reason to lose the message: the lead is made without a name, and the handle stays
unknown.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from app.domains.auth.instagram.graph import GRAPH_VERSION

log = logging.getLogger(__name__)
PROFILE_TIMEOUT = 5.0  # seconds: the webhook waits for it, and Meta wants its answer quickly


def fetch_profile(*, settings, igsid: str, token: str) -> dict:
    """{"username": ..., "name": ...} as far as Graph tells; {} when it cannot be read."""
    base = settings.instagram_graph_url.rstrip("/")
    query = urllib.parse.urlencode({"fields": "username,name"})
    request = urllib.request.Request(
        f"{base}/{GRAPH_VERSION}/{urllib.parse.quote(igsid, safe='')}?{query}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=PROFILE_TIMEOUT) as answer:
            found = json.loads(answer.read() or b"{}")
    except (OSError, ValueError) as error:  # urllib's errors are OSErrors; ValueError: not JSON
        # Never the IGSID nor anything of the person: the kind of failure only.
        log.warning(
            "Instagram profile unreadable (%s): the lead is made without a name", type(error).__name__
        )
        return {}
    if not isinstance(found, dict):
        return {}
    return {key: str(found[key])[:64] for key in ("username", "name") if found.get(key)}
