"""Whose Instagram account a token is, as Meta's Graph API answers for the token itself.

GET {INSTAGRAM_GRAPH_URL}/{version}/me?fields=user_id,username with the token (Bearer): Graph
answers the professional account the token was granted by; its `user_id` is the IG_ID that Meta's
webhooks name (`id` is only the app-scoped id). A clinic connects an account only with a token
Graph says is that account's: else anyone could take any account's DMs with a made-up token.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

from app.platform.errors import DomainError

# Graph's error codes for its rate limits (4, 17, 32, 613) and temporary failures (1, 2): worth
# asking again later, whatever the HTTP status (its throttles answer 400).
RETRIED_CODES = frozenset({1, 2, 4, 17, 32, 613})
GRAPH_VERSION = "v21.0"  # the Graph API version in every request's path (Meta keeps each for two years)
OWNER_TIMEOUT = 10.0  # seconds: an admin waits for it
RETRY_AFTER_SECONDS = "30"


class GraphUnavailable(DomainError):
    """Meta could not be asked whose the token is (unreachable, 5xx, throttled): nothing is changed,
    and the admin may try again."""

    status = 503


def token_owner(settings, token: str) -> str | None:
    """The IG_ID of the account `token` belongs to; None when Graph refuses the token (invalid,
    expired, revoked: its OAuthException). GraphUnavailable when Graph cannot say."""
    base = settings.instagram_graph_url.rstrip("/")
    query = urllib.parse.urlencode({"fields": "user_id,username"})
    request = urllib.request.Request(
        f"{base}/{GRAPH_VERSION}/me?{query}",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=OWNER_TIMEOUT) as answer:
            found = _json(answer.read())
    except urllib.error.HTTPError as exc:
        error = _json(exc.read()).get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if exc.code >= 500 or exc.code == 429 or code in RETRIED_CODES:
            raise _unavailable(f"HTTP {exc.code}, code {code}") from exc
        return None
    except (OSError, http.client.HTTPException) as exc:  # urllib's URLError is an OSError
        raise _unavailable(type(exc).__name__) from exc
    # The node itself, or (as Meta's getting-started guide shows it) a `data` list of one.
    data = found.get("data")
    node = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else found
    owner = node.get("user_id")
    if not owner:
        raise _unavailable("no user_id in the answer")
    return str(owner)


def _json(raw: bytes) -> dict:
    try:
        found = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _unavailable(why: str) -> GraphUnavailable:
    return GraphUnavailable(
        f"Meta's Graph API could not say whose the token is ({why}); nothing changed, try again",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )
