"""Outbound transports: SMTP email (smtp.py), a Twilio-style HTTP SMS provider, and the console (a
log under var/). The message and the errors a send ends in are in transport.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict

from app import config
from app.notifications.providers import smtp
from app.notifications.providers.transport import (
    OutcomeUnknown,
    Outgoing,
    PermanentError,
    SendError,
    TransientError,
    format_sender,
    message_id,
)

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


def send(message: Outgoing, settings) -> str:
    """Send through the backend configured for the channel; returns the provider message id."""
    if message.channel == "email":
        if settings.email_backend == "smtp":
            return smtp.send_smtp(message, settings)
        return send_console(message)
    if message.channel == "sms":
        if settings.sms_backend == "http":
            return send_http_sms(message, settings)
        return send_console(message)
    raise PermanentError(f"no transport for channel {message.channel!r}")


def send_each(
    messages: list[Outgoing], settings, *, stop: Callable[[], bool] = lambda: False
) -> list[str | Exception | None]:
    """Send messages in order: for each its provider message id, the error it ended in, or None if
    `stop()` said to stop before it was handed over. Emails over SMTP travel pipelined (smtp.py)."""
    if settings.email_backend == "smtp" and messages and all(m.channel == "email" for m in messages):
        return smtp.send_over_one_connection(messages, settings, stop=stop)
    results: list[str | Exception | None] = []
    for message in messages:
        if stop():
            results.append(None)
            continue
        try:
            results.append(send(message, settings))
        except Exception as exc:  # the caller decides what each error means
            results.append(exc)
    return results


# --- console ----------------------------------------------------------------------------------------


def send_console(message: Outgoing) -> str:
    """Append the message as one JSON line to var/outbox/<channel>.log (one write: lines never interleave)."""
    outbox = config.VAR_DIR / "outbox"
    outbox.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(asdict(message), ensure_ascii=False) + "\n").encode()
    fd = os.open(outbox / f"{message.channel}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return f"console:{message.notification_id}"


# --- HTTP SMS (Twilio-style) -----------------------------------------------------------------------


def send_http_sms(message: Outgoing, settings) -> str:
    """POST To/From/Body to {base}/Accounts/{account}/Messages.json with an idempotency token.

    The token is the notification's dedupe key: a re-send after a timeout (or after a worker died
    mid-send) is recognised by the provider and not delivered twice, so every error but a 4xx retries.
    """
    if not E164.match(message.to or ""):
        raise PermanentError(f"invalid phone number {message.to!r}; give E.164 like +15551234567")
    if not settings.sms_account or not settings.sms_token or not message.sender:
        raise PermanentError("SMS provider not configured (SMS_ACCOUNT, SMS_TOKEN, SMS_FROM)")
    # A Messaging Service SID picks the number from the clinic's pool; otherwise the number is From.
    via = "MessagingServiceSid" if message.sender.startswith("MG") else "From"
    form = {"To": message.to, via: message.sender, "Body": message.text}
    if settings.sms_status_callback_url:
        form["StatusCallback"] = settings.sms_status_callback_url
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
            "I-Twilio-Idempotency-Token": message.dedupe_key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.notification_send_timeout) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        detail = _provider_error(exc)
        if exc.code == 429 or exc.code >= 500:
            raise TransientError(f"SMS provider HTTP {exc.code}: {detail}") from exc
        raise PermanentError(f"SMS provider HTTP {exc.code}: {detail}") from exc
    except (TimeoutError, urllib.error.URLError, OSError, ValueError) as exc:
        raise TransientError(f"SMS provider unreachable: {exc}") from exc
    sid = answer.get("sid")
    if not sid:
        raise TransientError("SMS provider answered without a message sid")
    return str(sid)


def _provider_error(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read() or b"{}")
        return str(body.get("message") or body)[:500]
    except Exception:
        return exc.reason if isinstance(exc.reason, str) else str(exc)
