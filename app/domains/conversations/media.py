"""The images and videos of a conversation: kept as references, shown to staff through the engine.

An inbound message's media stays where the provider keeps it (Twilio's `MediaUrl{N}` with its
`MediaContentType{N}`, an Instagram attachment's `payload.url` and `type`): the engine stores the
reference (the URL encrypted like PHI) and, when a staff member who may read PHI opens it
(GET /api/leads/{id}/conversation/messages/{message_id}/media/{n}), fetches the bytes and streams
them with the stored content type. The engine fetches from the provider's own hosts only: for SMS
and WhatsApp the account's media paths on the SMS API's origin (api.twilio.com, or the stand-in
SMS_API_URL names: `/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}`, the
only URLs the account's credentials go to) and the CDN hosts Twilio redirects its media to; for
Instagram the Graph API's origin (INSTAGRAM_GRAPH_URL) and Meta's CDN hosts. A URL on any other
host is never fetched, whoever wrote it into a webhook (SSRF): that holds for every redirect too.
Each fetch has a timeout and a size cap.
"""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa

from app.domains.conversations.models import ConversationMedia, ConversationMessage
from app.platform.db import UnitOfWork
from app.platform.errors import DomainError, NotFound

KINDS = ("image", "video")
MAX_ITEMS = 10  # Twilio's most media on one message
MAX_BYTES = 25 * 1024 * 1024  # the largest any channel carries (an Instagram video)
CHUNK = 64 * 1024
FETCH_TIMEOUT = 10.0  # seconds per socket operation of a fetch
MAX_REDIRECTS = 3
# Where Twilio answers a media URL with a redirect to (its media CDN, and the S3 bucket behind it).
TWILIO_MEDIA_HOSTS = ("media.twiliocdn.com", "mms.twiliocdn.com", "s3-external-1.amazonaws.com")
# Meta's CDN: an Instagram attachment's payload.url, and where it redirects.
GRAPH_MEDIA_HOSTS = ("lookaside.fbsbx.com",)
GRAPH_MEDIA_SUFFIXES = (".fbcdn.net", ".cdninstagram.com", ".fbsbx.com")
TWILIO_CHANNELS = ("sms", "whatsapp")


@dataclass(frozen=True)
class MediaRef:
    """One image or video as a provider described it."""

    url: str
    kind: str  # image | video | file
    content_type: str | None = None


class MediaUnavailable(DomainError):
    """The provider did not give the media (gone, refused, too large, not reachable)."""

    status = 502
    code = "media_unavailable"


def kind_of(content_type: str | None) -> str:
    major = (content_type or "").partition("/")[0].lower()
    return major if major in KINDS else "file"


def from_twilio(form: dict) -> tuple[MediaRef, ...]:
    """Twilio's NumMedia, MediaUrl{N} and MediaContentType{N} of an inbound SMS/MMS or WhatsApp."""
    try:
        count = min(int(form.get("NumMedia") or 0), MAX_ITEMS)
    except ValueError:
        return ()
    found = []
    for n in range(max(count, 0)):
        url = str(form.get(f"MediaUrl{n}") or "").strip()
        content_type = str(form.get(f"MediaContentType{n}") or "").strip()[:64] or None
        if url and len(url) <= 2000:
            found.append(MediaRef(url=url, kind=kind_of(content_type), content_type=content_type))
    return tuple(found)


def from_instagram(attachments) -> tuple[MediaRef, ...]:
    """An Instagram message's `attachments[]` of type image or video, by `payload.url`."""
    found = []
    for attachment in attachments if isinstance(attachments, list) else []:
        if not isinstance(attachment, dict) or attachment.get("type") not in KINDS:
            continue
        payload = attachment.get("payload")
        url = str(payload.get("url") or "").strip() if isinstance(payload, dict) else ""
        if url and len(url) <= 2000:
            found.append(MediaRef(url=url, kind=attachment["type"]))
    return tuple(found[:MAX_ITEMS])


def record(*, session: UnitOfWork, message: ConversationMessage, refs, now: datetime) -> None:
    """Keep a message's media references, numbered from 0 as the provider numbered them."""
    for position, ref in enumerate(refs):
        session.add(
            ConversationMedia(
                clinic_id=message.clinic_id,
                message_id=message.id,
                position=position,
                kind=ref.kind,
                content_type=ref.content_type,
                url=ref.url,
                created_at=now,
            )
        )
    if refs:
        session.flush()


def of_messages(session: UnitOfWork, message_ids: list[int]) -> dict[int, list[ConversationMedia]]:
    """The media of these messages, by message id, in order (one query for a page)."""
    found: dict[int, list[ConversationMedia]] = {}
    if not message_ids:
        return found
    rows = session.scalars(
        sa.select(ConversationMedia)
        .where(ConversationMedia.message_id.in_(message_ids))
        .order_by(ConversationMedia.message_id, ConversationMedia.position)
    )
    for row in rows:
        found.setdefault(row.message_id, []).append(row)
    return found


def entries(message: ConversationMessage, rows: list[ConversationMedia], lead_id: int | None) -> list[dict]:
    """What the thread shows of a message's media: an inbound one's engine URL (never the
    provider's); an outbound one's address as the clinic sent it (its own public file)."""
    shown = []
    for row in rows:
        if message.direction == "inbound":
            url = f"/api/leads/{lead_id}/conversation/messages/{message.id}/media/{row.position}"
        else:
            url = row.url
        shown.append({"n": row.position, "kind": row.kind, "content_type": row.content_type, "url": url})
    return shown


def reference(
    *, session: UnitOfWork, conversation_id: int, message_id: int, n: int
) -> tuple[ConversationMessage, ConversationMedia]:
    """The inbound message's n-th media of the conversation; 404 for any other."""
    message = session.get(ConversationMessage, message_id)
    if message is None or message.conversation_id != conversation_id or message.direction != "inbound":
        raise NotFound("no such message in the lead's conversation")
    row = session.scalar(
        sa.select(ConversationMedia).where(
            ConversationMedia.message_id == message.id, ConversationMedia.position == n
        )
    )
    if row is None:
        raise NotFound("the message has no media with that number")
    return message, row


# --- fetching from the provider ---------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def allowed(url: str, *, channel: str, settings) -> bool:
    """Whether `url` is on the channel's provider's own hosts: its configured API origin (any
    scheme the configuration names: a stand-in is http on the loopback), or its media CDN over https."""
    try:
        scheme, host, port = _origin(url)
    except ValueError:  # a port out of range
        return False
    if channel in TWILIO_CHANNELS:
        if (scheme, host, port) == _origin(settings.sms_api_url):
            return is_account_media(url, settings)  # the API's other paths answer with the credentials
        api, hosts, suffixes = settings.sms_api_url, TWILIO_MEDIA_HOSTS, ()
    elif channel == "instagram":
        api, hosts, suffixes = settings.instagram_graph_url, GRAPH_MEDIA_HOSTS, GRAPH_MEDIA_SUFFIXES
    else:
        return False
    if (scheme, host, port) == _origin(api):
        return True
    return scheme == "https" and port == 443 and (host in hosts or host.endswith(suffixes))


_SID = "[A-Za-z0-9]{2,64}"  # Twilio's SIDs: two letters and 32 hex digits


def is_account_media(url: str, settings) -> bool:
    """Whether `url` is a media item of the configured account on the configured Twilio API host
    (`{API}/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}`, the API being
    https://api.twilio.com/2010-04-01): the only URL the account's credentials are sent to."""
    account, api = settings.sms_account or "", urlsplit(settings.sms_api_url)
    try:
        parts = urlsplit(url)
        same_origin = _origin(url) == _origin(settings.sms_api_url)
    except ValueError:  # a port out of range
        return False
    media_path = (
        f"{re.escape(api.path.rstrip('/'))}/Accounts/{re.escape(account)}/Messages/{_SID}/Media/{_SID}"
    )
    return (
        same_origin
        and bool(account)
        and not parts.query
        and not parts.fragment
        and re.fullmatch(media_path, parts.path) is not None
    )


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the provider's own hosts (the credentials stay behind)."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, channel: str, settings):
        self.channel, self.settings = channel, settings

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not allowed(newurl, channel=self.channel, settings=self.settings):
            raise MediaUnavailable("the provider sent the media elsewhere: not fetched")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass(frozen=True)
class Fetched:
    content_type: str
    length: int | None
    chunks: Iterator[bytes]


def fetch(*, row: ConversationMedia, channel: str, settings) -> Fetched:
    """Open the media at its provider (never another host), within FETCH_TIMEOUT and MAX_BYTES."""
    if not allowed(row.url, channel=channel, settings=settings):
        raise MediaUnavailable("the media is not on its provider's host: not fetched")
    request = urllib.request.Request(row.url, headers={"Accept": "image/*, video/*"})
    if channel in TWILIO_CHANNELS and is_account_media(row.url, settings):
        # Twilio may require the account's credentials on media URLs: sent to the account's media
        # path only (any other path of the API would answer with the account's data), never past a redirect.
        pair = f"{settings.sms_account or ''}:{settings.sms_token or ''}".encode()
        request.add_unredirected_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    opener = urllib.request.build_opener(_Redirects(channel, settings))
    try:
        answer = opener.open(request, timeout=FETCH_TIMEOUT)
    except urllib.error.HTTPError as error:
        raise MediaUnavailable(f"the provider answered HTTP {error.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise MediaUnavailable(f"the provider is not reachable: {type(error).__name__}") from None
    length = answer.headers.get("Content-Length")
    length = int(length) if length and length.isdigit() else None
    if length is not None and length > MAX_BYTES:
        answer.close()
        raise MediaUnavailable(f"the media is larger than {MAX_BYTES} bytes")
    return Fetched(content_type=_content_type(row, answer), length=length, chunks=_read(answer))


def _content_type(row: ConversationMedia, answer) -> str:
    """The stored type (Twilio's); else the provider's, when it is of the stored kind (Instagram's)."""
    if row.content_type:
        return row.content_type
    given = (answer.headers.get_content_type() or "").lower()
    return given if kind_of(given) == row.kind else "application/octet-stream"


def _read(answer) -> Iterator[bytes]:
    """The body in chunks, cut at MAX_BYTES (a provider that said no length and sends more)."""
    sent = 0
    try:
        while sent < MAX_BYTES:
            chunk = answer.read(min(CHUNK, MAX_BYTES - sent))
            if not chunk:
                return
            sent += len(chunk)
            yield chunk
    finally:
        answer.close()
