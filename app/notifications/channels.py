"""Outbound transports: SMTP email, a Twilio-style HTTP SMS provider, and the console (a log under var/).

Every send either returns the provider's message id or raises one of three errors, which decide what
delivery does next: TransientError (retry with backoff), PermanentError (failed, no retry) and
OutcomeUnknown (the message went out and no answer came back: for email nobody can tell whether it
was accepted, so it is not re-sent blindly).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import os
import re
import secrets
import smtplib
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from email.header import Header
from email.utils import formataddr, parseaddr

from app import config

CRLF = "\r\n"
EMAIL_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")  # syntax only: the server judges the rest
E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class SendError(Exception):
    """A send did not succeed; the subclass says whether trying again can help."""


class TransientError(SendError):
    """Connection refused, timeout, SMTP 4xx, HTTP 429/5xx: try again later."""


class PermanentError(SendError):
    """Invalid address, SMTP 5xx, HTTP 4xx: trying again would fail the same way."""


class OutcomeUnknown(SendError):
    """The whole message was handed over and the answer never came (timeout, dropped connection)."""


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends; built from the notification row inside the claim transaction."""

    notification_id: int
    channel: str  # email | sms
    to: str
    sender: str
    subject: str
    text: str
    html: str | None
    dedupe_key: str


def send(message: Outgoing, settings) -> str:
    """Send through the backend configured for the channel; returns the provider message id."""
    if message.channel == "email":
        if settings.email_backend == "smtp":
            return send_smtp(message, settings)
        return send_console(message)
    if message.channel == "sms":
        if settings.sms_backend == "http":
            return send_http_sms(message, settings)
        return send_console(message)
    raise PermanentError(f"no transport for channel {message.channel!r}")


def message_id(message: Outgoing) -> str:
    """A Message-ID derived from the dedupe key: every attempt of one notification carries the same one."""
    # The address's domain, not the raw header's: "Name <a@b.c>" would leave a ">" in the id.
    domain = address_of(message.sender).rpartition("@")[2] or "followup.local"
    return f"<{hashlib.sha256(message.dedupe_key.encode()).hexdigest()[:32]}@{domain}>"


@functools.lru_cache(maxsize=256)
def address_of(sender: str) -> str:
    """The plain address of a From value ("Name <a@b.c>" -> "a@b.c"); a clinic has one, so cached."""
    return parseaddr(sender)[1]


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


# --- SMTP -------------------------------------------------------------------------------------------

# One connection per thread (a prefork child has one thread), reused across messages: opening a TCP
# connection, EHLO, STARTTLS and AUTH per message would cost more than the message itself.
_local = threading.local()


# Written directly, not through the email package's generator: rendering a multipart message there
# (header folding, a boundary regex compiled per message) cost about two thirds of a delivering
# worker's CPU. The structure is fixed and small: text, or multipart/alternative of text and HTML,
# each part UTF-8 quoted-printable (binascii: lines stay under 76 bytes whatever the template
# renders), CRLF line ends. tests/notifications/test_email_bytes.py checks what the stdlib parser
# reads back from it.
_MAX_HEADER = 78


def email_bytes(message: Outgoing) -> bytes:
    """The message as it goes over the wire: headers, a blank line, the body (not yet dot-stuffed)."""
    headers = [
        _header("Subject", message.subject),
        _header("From", message.sender),  # formataddr already encoded a non-ASCII display name
        _header("To", message.to),  # a checked plain address
        _header("Message-ID", message_id(message)),
        _header("X-Followup-Key", message.dedupe_key),  # lets a receiver (and our tests) spot a duplicate
        b"MIME-Version: 1.0\r\n",
    ]
    if not message.html:
        return b"".join([*headers, *_part("plain", message.text)])
    boundary = f"=_{secrets.token_hex(16)}".encode()  # "=_" never occurs in quoted-printable text
    return b"".join(
        [
            *headers,
            b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n\r\n',
            b"--" + boundary + b"\r\n",
            *_part("plain", message.text),
            b"\r\n--" + boundary + b"\r\n",
            *_part("html", message.html),
            b"\r\n--" + boundary + b"--\r\n",
        ]
    )


def _part(subtype: str, text: str) -> list[bytes]:
    """A text part's own headers, a blank line and its body, UTF-8 quoted-printable with CRLF ends."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")  # one kind of line end, as the generator did
    body = binascii.b2a_qp(lines.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'.encode(),
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
        body,
    ]


def _header(name: str, value: str) -> bytes:
    """One header line: ASCII folded at spaces to 78 columns where it can be; anything else as RFC
    2047 encoded words. Line breaks in a value become spaces (a value never starts a new header)."""
    value = " ".join(value.split()) if ("\r" in value or "\n" in value) else value
    if not value.isascii():
        return f"{name}: {Header(value, 'utf-8', header_name=name).encode(linesep=CRLF)}\r\n".encode("ascii")
    line = f"{name}: {value}"
    if len(line) <= _MAX_HEADER:
        return (line + "\r\n").encode("ascii")
    folded, current = [], ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > _MAX_HEADER:
            folded.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    folded.append(current)
    return ("\r\n ".join(folded) + "\r\n").encode("ascii")


def _check_address(address: str) -> None:
    if "\r" in address or "\n" in address or not EMAIL_ADDRESS.match(address or ""):
        raise PermanentError(f"invalid email address {address!r}")


def _connect(settings) -> smtplib.SMTP:
    timeout = settings.notification_send_timeout
    try:
        if settings.smtp_ssl:
            conn = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
        conn.ehlo_or_helo_if_needed()  # mail() does not greet by itself (sendmail() would)
        if settings.smtp_starttls and not settings.smtp_ssl:
            conn.starttls(context=ssl.create_default_context())
            conn.ehlo()
        if settings.smtp_username:
            conn.login(settings.smtp_username, settings.smtp_password or "")
    except smtplib.SMTPResponseException as exc:
        raise _by_code(exc.smtp_code, exc.smtp_error, "connecting") from exc
    except (OSError, smtplib.SMTPException) as exc:  # refused, timeout, TLS handshake, disconnect
        raise TransientError(f"SMTP connection to {settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    return conn


def _by_code(code: int, text, stage: str) -> SendError:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    error = f"SMTP {code} while {stage}: {detail}"
    return TransientError(error) if 400 <= code < 500 else PermanentError(error)


def _drop_connection() -> None:
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None:
        with contextlib.suppress(Exception):  # closing a broken socket may fail; it is gone either way
            conn.close()


def send_smtp(message: Outgoing, settings) -> str:
    """MAIL, RCPT, DATA over a reused connection (one write when the server offers PIPELINING, RFC
    2920), then the message; the phase an error happens in decides its kind."""
    _check_address(message.to)
    sender = address_of(message.sender)
    _check_address(sender)
    payload = _dot_stuffed(email_bytes(message))
    conn, replies = _open_transaction(sender, message.to, settings)
    refused = _refusal(replies)
    if refused is not None:
        if replies[-1][0] == 354:  # the server waits for a message we will not send: only closing aborts
            _drop_connection()
        else:
            _reset(conn)
        raise refused
    try:
        conn.send(payload)  # without the final dot nothing is delivered: failures so far are safe
    except (OSError, smtplib.SMTPException) as exc:
        _drop_connection()
        raise TransientError(f"SMTP: {exc}") from exc
    try:
        code, text = conn.getreply()
    except (OSError, smtplib.SMTPException) as exc:
        # The server has the whole message and we never heard whether it took it (RFC 1047).
        _drop_connection()
        raise OutcomeUnknown(f"no answer after the message was sent: {exc}") from exc
    if code != 250:
        _reset(conn)
        raise _by_code(code, text, "sending the message")
    return message_id(message)


def _dot_stuffed(payload: bytes) -> bytes:
    """The DATA section: leading dots doubled, CRLF-terminated, then the lone dot that ends it."""
    data = re.sub(rb"(?m)^\.", b"..", payload)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


# The envelope's commands and the replies that let the transaction go on.
_ENVELOPE = (("MAIL FROM", (250,)), ("RCPT TO", (250, 251)), ("DATA", (354,)))


def _open_transaction(sender: str, to: str, settings) -> tuple[smtplib.SMTP, list[tuple[int, bytes]]]:
    """The worker's connection (opened if need be) and the replies to MAIL, RCPT and DATA, as far as
    they went (lock-step stops at the first refusal). A cached connection found stale (the server's
    idle timeout) is replaced once: no message had been handed over on it."""
    try:
        commands = f"MAIL FROM:<{sender}>\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode("ascii")
    except UnicodeEncodeError as exc:
        raise PermanentError(f"address needs SMTPUTF8, which is not offered: {sender!r} -> {to!r}") from exc
    key = (settings.smtp_host, settings.smtp_port, settings.smtp_username)
    for fresh in (False, True):
        conn = getattr(_local, "conn", None)
        if conn is None or getattr(_local, "key", None) != key:
            _drop_connection()
            conn = _local.conn = _connect(settings)
            _local.key, fresh = key, True
        try:
            return conn, _envelope_replies(conn, commands)
        except (OSError, smtplib.SMTPException) as exc:
            _drop_connection()
            if fresh:
                raise TransientError(f"SMTP connection lost before the message was sent: {exc}") from exc
    raise AssertionError("unreachable")


def _envelope_replies(conn: smtplib.SMTP, commands: bytes) -> list[tuple[int, bytes]]:
    if conn.has_extn("pipelining"):
        conn.send(commands)  # one write, then the three replies in order
        return [conn.getreply() for _ in _ENVELOPE]
    replies = []
    for line, (_, ok) in zip(commands.split(b"\r\n"), _ENVELOPE, strict=False):
        conn.send(line + b"\r\n")
        replies.append(conn.getreply())
        if replies[-1][0] not in ok:
            break
    return replies


def _refusal(replies: list[tuple[int, bytes]]) -> SendError | None:
    """The error of the first refused envelope command, if any (a pipelined DATA after a refused
    RCPT is refused too, or must not be answered with a message)."""
    for (code, text), (stage, ok) in zip(replies, _ENVELOPE, strict=False):
        if code not in ok:
            return _by_code(code, text, stage)
    return None


def _reset(conn: smtplib.SMTP) -> None:
    """After a refused command the connection is still usable once the transaction is reset."""
    try:
        conn.rset()
    except Exception:
        _drop_connection()


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
    form = {"To": message.to, "From": message.sender, "Body": message.text}
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


def format_sender(name: str | None, address: str) -> str:
    return formataddr((name, address)) if name else address
