"""Instagram direct messages through Meta's Graph API Send endpoint, as the clinic's account.

POST {INSTAGRAM_GRAPH_URL}/{INSTAGRAM_GRAPH_VERSION}/{IG_ID}/messages with the clinic's token
(Bearer) and JSON {"recipient": {"id": IGSID}, "message": {"text": ...}, "messaging_type": ...}:
RESPONSE inside the 24 hours after the family's last message, MESSAGE_TAG with tag HUMAN_AGENT for a
person's reply after them (the policy never lets a message go outside those windows). Graph answers
{"recipient_id", "message_id"}; the message_id is the provider id kept on the notification.

What an error means: Graph's error code says it better than the HTTP status (its throttles answer
400): codes 4, 17, 32 and 613 (rate limits) and 1, 2 (temporary) are retried, as are HTTP 429 and
5xx; an expired or revoked token (190), a missing permission (10, 200-299), an unknown or
unreachable recipient (100, 551) are permanent. A connection refused or a timeout while connecting
is retried (nothing left); no answer after the request left is OutcomeUnknown (the family may have
it: never sent again by itself).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request

from app.domains.auth.instagram.graph import GRAPH_VERSION, RETRIED_CODES
from app.domains.outbound.providers.transport import OutcomeUnknown, Outgoing, PermanentError, TransientError

MAX_TEXT = 1000  # Meta's limit on a text message's length


def send_instagram(message: Outgoing, settings) -> str:
    """Send one DM; the Graph message_id, or one of the transport errors."""
    if not message.credential or not message.sender:
        raise PermanentError("no Instagram account is connected (PUT /api/integrations/instagram)")
    if not message.to:
        raise PermanentError("the lead has no Instagram conversation to reply in")
    body = {"recipient": {"id": message.to}, "message": {"text": message.text[:MAX_TEXT]}}
    if message.media_url:  # an attachment is a message of its own: Graph takes no text beside it
        attachment = {"type": message.media_kind or "image", "payload": {"url": message.media_url}}
        body["message"] = {"attachment": attachment}
    if message.tag:
        body.update(messaging_type="MESSAGE_TAG", tag=message.tag)
    else:
        body["messaging_type"] = "RESPONSE"
    base = settings.instagram_graph_url.rstrip("/")
    url = f"{base}/{GRAPH_VERSION}/{urllib.parse.quote(message.sender, safe='')}/messages"
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {message.credential}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.notification_send_timeout) as answer:
            return _message_id(answer.read())
    except urllib.error.HTTPError as exc:
        raise _error_of(exc.code, exc.read()) from exc
    except urllib.error.URLError as exc:  # urllib wraps what fails while connecting: nothing left
        raise TransientError(f"Instagram Graph API unreachable: {type(exc.reason).__name__}") from exc
    except (OSError, http.client.HTTPException) as exc:  # the request left; no answer
        raise OutcomeUnknown(
            f"no answer from the Instagram Graph API after sending: {type(exc).__name__}"
        ) from exc


def _json(raw: bytes) -> dict:
    try:
        found = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _message_id(raw: bytes) -> str:
    found = _json(raw).get("message_id")
    if not found:
        raise OutcomeUnknown("the Instagram Graph API answered without a message_id")
    return str(found)


def _error_of(status: int, raw: bytes) -> Exception:
    """The transport error a Graph error answer means (its code and message, never the request)."""
    error = _json(raw).get("error")
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    detail = f"Instagram Graph API HTTP {status}, code {code}: {str(error.get('message') or '')[:300]}"
    if code in RETRIED_CODES or status == 429 or status >= 500:
        return TransientError(detail)
    return PermanentError(detail)
