"""An image or video the clinic sends (a reply from the thread, a sequence step), checked before it
is queued: the channel carries it, its type is one the channel takes and its size is within the
channel's limit, so the provider never refuses it later. A clear 422 names the field otherwise.

Limits per channel (the providers' own): SMS goes as an MMS through Twilio (`MediaUrl`): JPEG, PNG
or GIF up to 5 MB. WhatsApp (Twilio): JPEG or PNG up to 5 MB, MP4 video up to 16 MB. Instagram
(Graph attachment): an image up to 8 MB, an MP4 or MOV video up to 25 MB. Email carries no media:
a 422 says to put the link in the body.

The provider fetches the file from its URL, so the engine asks the URL first (HEAD: its type and
size, within a timeout) through the one address guard (app/platform/delivery/addresses.py): like a
webhook's, that URL (and each redirect) may not be on a private or reserved address unless
WEBHOOK_ALLOW_PRIVATE_ADDRESSES says so (a test's local file server), the connection goes to the
address that was checked, and a URL that cannot be read gets one text whatever the reason: the
engine never probes the internal network for a caller.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from app.domains.conversations.media import MediaRef, kind_of
from app.platform.delivery import addresses
from app.platform.errors import ValidationFailed

log = logging.getLogger(__name__)

TEXT, IMAGE, VIDEO = "text", "image", "video"
MESSAGE_TYPES = (TEXT, IMAGE, VIDEO)
MB = 1024 * 1024
PROBE_TIMEOUT = 5.0
_IMAGES_MMS = ("image/jpeg", "image/png", "image/gif")
LIMITS: dict[str, dict[str, int]] = {
    "sms": dict.fromkeys(_IMAGES_MMS, 5 * MB),
    "whatsapp": {"image/jpeg": 5 * MB, "image/png": 5 * MB, "video/mp4": 16 * MB},
    "instagram": {
        **dict.fromkeys(("image/jpeg", "image/png", "image/gif"), 8 * MB),
        **dict.fromkeys(("video/mp4", "video/quicktime"), 25 * MB),
    },
}


def static_problems(channel: str | None, message_type: str | None, media_url: str | None) -> dict:
    """What is wrong without asking the URL: {field: [message]} (empty when nothing is); `channel`
    None: not known yet (a reply on the family's last channel), checked again once it is."""
    if media_url is None:
        if message_type in (IMAGE, VIDEO):
            return {"media_url": [f"an {message_type} message needs its media_url"]}
        return {}
    if message_type == TEXT:
        return {"message_type": ["a text message has no media_url: say image or video"]}
    if channel == "email":
        return {"media_url": ["an email carries no media: put the link in the body"]}
    if channel is not None and channel not in LIMITS:
        return {"media_url": [f"{channel} carries no media; channels that do: {', '.join(LIMITS)}"]}
    try:
        parts = urlsplit(media_url)
        usable = parts.scheme in ("https", "http") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # "http://[::1", a port out of range
        usable = False
    if not usable or any(ch.isspace() for ch in media_url):
        return {"media_url": ["an http(s) URL the provider can fetch"]}
    return {}


def check(*, channel: str, data: dict, settings) -> MediaRef | None:
    """The media to send with `data` (its message_type, media_url and body; None for a text), once
    the channel, type and size are right; else ValidationFailed naming the field."""
    message_type, media_url, body = data.get("message_type"), data.get("media_url"), data.get("body")
    problems = static_problems(channel, message_type, media_url)
    if problems:
        raise ValidationFailed(problems)
    if media_url is None:
        return None
    if channel == "instagram" and body:
        raise ValidationFailed("body", "an Instagram image or video goes alone: send the text apart")
    content_type, size = probe(media_url, settings)
    limits = LIMITS[channel]
    if content_type not in limits:
        given, taken = content_type or "an unknown type", ", ".join(limits)
        raise ValidationFailed("media_url", f"{given} is not sent by {channel}: {taken}")
    if size is not None and size > limits[content_type]:
        limit = limits[content_type] // MB
        raise ValidationFailed(
            "media_url", f"{size / MB:.1f} MB is over {channel}'s {limit} MB limit for {content_type}"
        )
    kind = kind_of(content_type)
    if message_type is not None and message_type != kind:
        raise ValidationFailed("message_type", f"media_url is an {kind}, not an {message_type}")
    return MediaRef(url=media_url, kind=kind, content_type=content_type)


def probe(media_url: str, settings) -> tuple[str | None, int | None]:
    """(content type, size) the URL answers a HEAD with, through the address guard (its address
    checked and pinned, each redirect too); a 422 naming media_url with the guard's one text when it
    cannot be read, whatever the reason (the cause goes to the log)."""
    try:
        answer = addresses.fetch(
            media_url,
            method="HEAD",
            deadline=PROBE_TIMEOUT,
            allow_private=settings.webhook_allow_private_addresses,
        )
    except addresses.Unreachable as error:
        log.info("a media URL could not be probed: %s", error.detail)
        raise ValidationFailed("media_url", f"the URL {error}") from None
    content_type = (answer.headers.get_content_type() or "").lower() or None
    length = answer.headers.get("Content-Length")
    return content_type, int(length) if length and length.isdigit() else None


def check_steps(steps: list[dict], settings) -> None:
    """A sequence's steps with media, checked when it is saved (422 naming `steps.<n>.<field>`); each
    such step keeps the kind its URL turned out to be (`message_type`), which the send attaches as."""
    for index, step in enumerate(steps):
        if not step.get("media_url"):
            continue
        try:
            found = check(channel=step["channel"], data=step, settings=settings)
        except ValidationFailed as wrong:
            raise ValidationFailed({"steps": {str(index): wrong.errors["json"]}}) from None
        step["message_type"] = found.kind
