"""Outbound transports: SMTP email (smtp.py), a Twilio-style HTTP SMS provider (WhatsApp too, by the
same Messages API), Instagram (instagram.py), and the console (a log under var/). The message and
the errors a send ends in are in transport.py.
"""

from __future__ import annotations

import base64
import functools
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime

from app.domains.outbound.providers import instagram, pacing, smtp
from app.domains.outbound.providers.transport import (
    OutcomeUnknown,
    Outgoing,
    PermanentError,
    SendError,
    TransientError,
    format_sender,
    message_id,
)
from app.platform import config

__all__ = [
    "OutcomeUnknown",
    "Outgoing",
    "PermanentError",
    "SendError",
    "TransientError",
    "format_sender",
    "message_id",
    "send",
    "send_each",
]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
WHATSAPP = "whatsapp:"  # how Twilio writes a WhatsApp address


def send(message: Outgoing, settings, pacers: pacing.Pacers) -> str:
    """Send through the backend configured for the channel, at its sender's pace (pacing.py; the
    console is never paced); returns the provider message id."""
    if message.channel == "email":
        if settings.email_backend == "smtp":
            with pacing.slot(message, settings, pacers):
                return smtp.send_smtp(message, settings)
        return send_console(message)
    if message.channel == "sms":
        if settings.sms_backend == "http":
            with pacing.slot(message, settings, pacers):
                return send_http_sms(message, settings)
        return send_console(message)
    if message.channel == "whatsapp":  # Twilio's Messages API, as SMS, at its sender's pace
        if settings.sms_backend == "http":
            with pacing.slot(message, settings, pacers):
                return send_http_sms(message, settings)
        return send_console(message)
    if message.channel == "instagram":  # paced per account by the clinic's hourly window (rate_limits.py)
        return instagram.send_instagram(message, settings)
    raise PermanentError(f"no transport for channel {message.channel!r}")


def send_each(
    messages: list[Outgoing], settings, pacers: pacing.Pacers, *, stop: Callable[[], bool] = lambda: False
) -> list[str | Exception | None]:
    """Send messages in order: for each its provider message id, the error it ended in, or None if
    `stop()` said to stop before it was handed over. Emails over SMTP travel pipelined (smtp.py), each
    at the relay's pace (pacing.py), as does every message `send` sends."""
    if settings.email_backend == "smtp" and messages and all(m.channel == "email" for m in messages):
        pace = functools.partial(pacing.slot, settings=settings, pacers=pacers)
        return smtp.send_over_one_connection(messages, settings, stop=stop, pace=pace)
    results: list[str | Exception | None] = []
    for message in messages:
        if stop():
            results.append(None)
            continue
        try:
            results.append(send(message, settings, pacers))
        except Exception as exc:  # the caller decides what each error means
            results.append(exc)
    return results


# --- console ----------------------------------------------------------------------------------------


def send_console(message: Outgoing) -> str:
    """Append the message as one JSON line to var/outbox/<channel>.log (one write: lines never interleave)."""
    outbox = config.VAR_DIR / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    shown = {k: v for k, v in asdict(message).items() if k != "credential"}  # never a token on disk
    line = (json.dumps(shown, ensure_ascii=False) + "\n").encode()
    fd = os.open(outbox / f"{message.channel}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return f"console:{message.notification_id}"


# --- HTTP SMS (Twilio-style) -----------------------------------------------------------------------


def send_http_sms(message: Outgoing, settings) -> str:
    """POST To/From (or MessagingServiceSid)/Body to {base}/Accounts/{account}/Messages.json.

    Twilio's Messages API has no idempotency key, so what an error means depends on whether the
    request left: refused or unreachable before it was sent is transient (sent again later); no
    answer after it was sent is OutcomeUnknown (it may have reached the lead, and is never sent
    again by itself). The StatusCallback URL names the notification, so Twilio's callback can
    reconcile a message whose answer was lost."""
    if not E164.match(message.to or ""):
        raise PermanentError(f"invalid phone number {message.to!r}; give E.164 like +15551234567")
    if not settings.sms_account or not settings.sms_token or not message.sender:
        raise PermanentError("SMS provider not configured (SMS_ACCOUNT, SMS_TOKEN, SMS_FROM)")
    form = twilio_form(message)
    if message.media_url:  # an MMS or WhatsApp media: Twilio fetches it from the URL and sends it along
        form["MediaUrl"] = message.media_url
    if settings.sms_status_callback_url:
        form["StatusCallback"] = status_callback_url(
            settings.sms_status_callback_url, message.notification_id
        )
    credentials = base64.b64encode(f"{settings.sms_account}:{settings.sms_token}".encode()).decode()
    account = urllib.parse.quote(settings.sms_account, safe="")
    request = urllib.request.Request(
        f"{settings.sms_api_url.rstrip('/')}/Accounts/{account}/Messages.json",
        data=urllib.parse.urlencode(form).encode(),
        method="POST",
        headers={
            "Authorization": f"Basic {credentials}",
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.notification_send_timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = _provider_error(exc)
        if exc.code == 429 or exc.code >= 500:
            # Twilio answers these before creating the message: nothing was sent.
            raise TransientError(f"SMS provider HTTP {exc.code}: {detail}") from exc
        raise PermanentError(f"SMS provider HTTP {exc.code}: {detail}") from exc
    except urllib.error.URLError as exc:  # urllib wraps what fails while connecting and sending
        raise TransientError(f"SMS provider unreachable: {exc}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:  # the request left; no answer
        raise OutcomeUnknown(f"no answer from the SMS provider after the request was sent: {exc}") from exc
    sid = answer.get("sid")
    if not sid:
        raise OutcomeUnknown("SMS provider answered without a message sid")
    return str(sid)


def twilio_form(message: Outgoing) -> dict:
    """The Messages API form of an SMS or a WhatsApp message: WhatsApp's addresses are the numbers
    with a `whatsapp:` prefix, and outside its window the message is an approved template
    (ContentSid and ContentVariables, Twilio's Content API) rather than a Body."""
    if message.channel != "whatsapp":
        # A Messaging Service SID picks the number from the clinic's pool; otherwise the number is From.
        via = "MessagingServiceSid" if message.sender.startswith("MG") else "From"
        return {"To": message.to, via: message.sender, "Body": message.text}
    form = {"To": f"{WHATSAPP}{message.to}", "From": f"{WHATSAPP}{message.sender.removeprefix(WHATSAPP)}"}
    if message.content_sid:
        form["ContentSid"] = message.content_sid
        if message.content_variables:
            form["ContentVariables"] = message.content_variables
    else:
        form["Body"] = message.text
    return form


def sent_sms_like(settings, *, to: str, since: datetime, body: str) -> str | None:
    """The SID of a message Twilio has to `to`, sent on or after `since`'s day, with this body; None
    if there is none (GET Messages.json filtered by To and DateSent, as Twilio's client does)."""
    account = urllib.parse.quote(settings.sms_account or "", safe="")
    query = urllib.parse.urlencode({"To": to, "DateSent>": since.date().isoformat(), "PageSize": 100})
    credentials = base64.b64encode(f"{settings.sms_account}:{settings.sms_token}".encode()).decode()
    request = urllib.request.Request(
        f"{settings.sms_api_url.rstrip('/')}/Accounts/{account}/Messages.json?{query}",
        headers={"Authorization": f"Basic {credentials}", "Accept": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=settings.notification_send_timeout) as response:
        answer = json.loads(response.read() or b"{}")
    for message in answer.get("messages") or []:
        if message.get("body") == body and message.get("sid"):
            return str(message["sid"])
    return None


def status_callback_url(base: str, notification_id: int) -> str:
    """SMS_STATUS_CALLBACK_URL with the notification's id (`n`): how a callback finds a message
    whose SID the engine never learnt."""
    return f"{base}{'&' if '?' in base else '?'}{urllib.parse.urlencode({'n': notification_id})}"


def _provider_error(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        code = body.get("code") if isinstance(body, dict) else None
        text = str(body.get("message") or body) if isinstance(body, dict) else str(body)
        return (f"error {code}: {text}" if code else text)[:500]  # Twilio's code: a fallback reads it
    except Exception:
        return exc.reason if isinstance(exc.reason, str) else str(exc)
