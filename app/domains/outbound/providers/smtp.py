"""Email over SMTP: one connection per worker process kept across messages and batches, the wire
form of a message, and its sending: lock-step, or pipelined where the server offers PIPELINING.

A batch (`send_over_one_connection`) on a pipelining server costs one round trip per message (RFC
2920): a message's content is written together with the next message's envelope (MAIL, RCPT, DATA),
and their replies are read together. What each error means for the message is decided by the phase
it happened in, exactly as for a single send: refused before the content went out (nothing
delivered: transient or permanent by the code), the content written without its reply (outcome
unknown), or refused after it.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass

from app.domains.outbound.providers.composer import email_bytes
from app.domains.outbound.providers.transport import (
    OutcomeUnknown,
    Outgoing,
    PermanentError,
    SendError,
    TransientError,
    address_of,
    message_id,
)

EMAIL_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")  # syntax only: the server judges the rest

# One connection per thread (a prefork child has one thread), reused across messages: opening a TCP
# connection, EHLO, STARTTLS and AUTH per message would cost more than the message itself.
_local = threading.local()


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
        # A pipelined write (a message's content, then the next envelope) must not wait for the
        # previous one's acknowledgement (Nagle).
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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


def _connection(settings) -> tuple[smtplib.SMTP, bool]:
    """The worker's connection to the configured server, and whether it was just opened."""
    key = (settings.smtp_host, settings.smtp_port, settings.smtp_username)
    conn = getattr(_local, "conn", None)
    if conn is not None and getattr(_local, "key", None) == key:
        return conn, False
    _drop_connection()
    _local.conn, _local.key = _connect(settings), key
    return _local.conn, True


def _envelope(sender: str, to: str) -> bytes:
    try:
        return f"MAIL FROM:<{sender}>\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode("ascii")
    except UnicodeEncodeError as exc:
        raise PermanentError(f"address needs SMTPUTF8, which is not offered: {sender!r} -> {to!r}") from exc


def _open_transaction(sender: str, to: str, settings) -> tuple[smtplib.SMTP, list[tuple[int, bytes]]]:
    """The worker's connection (opened if need be) and the replies to MAIL, RCPT and DATA, as far as
    they went (lock-step stops at the first refusal). A cached connection found stale (the server's
    idle timeout) is replaced once: no message had been handed over on it."""
    commands = _envelope(sender, to)
    for _ in range(2):
        conn, fresh = _connection(settings)
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


# --- many messages, pipelined ---------------------------------------------------------------------


# `pace(message)`: the block in which a message is handed over (providers/pacing.py: the relay's pace).
Pace = Callable[[Outgoing], contextlib.AbstractContextManager]


def _unpaced(message: Outgoing) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext()


def send_over_one_connection(
    messages: list[Outgoing],
    settings,
    *,
    stop: Callable[[], bool] = lambda: False,
    pace: Pace = _unpaced,
) -> list[str | Exception | None]:
    """Send emails in order over the worker's connection: for each its message id, the error it ended
    in, or None if `stop()` said to stop before it was handed over. Pipelined when the server offers
    PIPELINING (one round trip per message), else each in lock-step as send_smtp does. Each message is
    handed over (its content written, its answer read) inside `pace(message)`: the relay's pace,
    pacing.py, which waits for the relay's next slot first."""
    results: list[str | Exception | None] = [None] * len(messages)
    try:
        conn, _ = _connection(settings)
    except SendError as exc:  # nothing listens, or it refuses us: every message is as far
        return [exc] * len(messages)
    if not conn.has_extn("pipelining"):
        for index, message in enumerate(messages):
            if stop():
                break
            try:
                with pace(message):
                    results[index] = send_smtp(message, settings)
            except Exception as exc:
                results[index] = exc
        return results
    ready = []
    for index, message in enumerate(messages):
        try:
            ready.append(_prepared(index, message))
        except Exception as exc:  # an invalid address: refused before anything is written
            results[index] = exc
    _Pipeline(settings, results, pace).run(ready, stop)
    return results


@dataclass(frozen=True)
class _Ready:
    """A message as it goes over the wire."""

    index: int  # in the batch
    message: Outgoing
    envelope: bytes  # MAIL FROM, RCPT TO, DATA
    content: bytes  # dot-stuffed, with the final dot
    message_id: str


def _prepared(index: int, message: Outgoing) -> _Ready:
    _check_address(message.to)
    sender = address_of(message.sender)
    _check_address(sender)
    content = _dot_stuffed(email_bytes(message))
    return _Ready(index, message, _envelope(sender, message.to), content, message_id(message))


class _Pipeline:
    """Each turn writes the content of the message whose envelope was accepted last, then the next
    message's envelope (after an RSET if a refused envelope left a transaction open), and reads their
    replies in the same order. A message whose content was written and whose reply never came is
    OutcomeUnknown; one whose envelope alone went out is sent again on a new connection (once)."""

    def __init__(self, settings, results: list, pace: Pace):
        self.settings, self.results, self.pace = settings, results, pace
        self.accepted: _Ready | None = None  # its envelope was accepted (354): its content goes next
        self.reset = False

    def run(self, ready: list[_Ready], stop: Callable[[], bool]) -> None:
        position, retried = 0, -1
        while True:
            current = ready[position] if position < len(ready) and not stop() else None
            if current is None and self.accepted is None:
                return
            try:
                conn, fresh = _connection(self.settings)
            except SendError as exc:
                self._give_up_current(current, exc)
                position += 1
                continue
            self.reset = self.reset and not fresh  # a new session has no transaction to reset
            # A turn hands the accepted message over (its content) and reads its answer: at the relay's pace.
            paced = contextlib.nullcontext() if self.accepted is None else self.pace(self.accepted.message)
            with paced:
                lost = self._turn(conn, current)
            if current is None:
                continue
            if lost is None:
                position += 1
            elif fresh or retried == position:  # a new connection failed too: as a single send would
                self.results[current.index] = TransientError(
                    f"SMTP connection lost before the message was sent: {lost}"
                )
                position += 1
            else:
                retried = position  # the cached connection had gone stale: nothing of it was delivered

    def _give_up_current(self, current: _Ready | None, error: SendError) -> None:
        """No connection to be had: the current message fails as a single send would."""
        if self.accepted is not None:  # (a connection is dropped only once its content is settled)
            self.results[self.accepted.index], self.accepted = error, None
        if current is not None:
            self.results[current.index] = error

    def _turn(self, conn: smtplib.SMTP, current: _Ready | None) -> Exception | None:
        """One write of [the accepted content] + [the current envelope], then their replies; the
        connection error that stopped the current envelope, if any (None: it was answered)."""
        accepted, self.accepted = self.accepted, None
        if accepted is not None:
            try:
                conn.send(accepted.content)
            except (OSError, smtplib.SMTPException) as exc:  # no final dot went out: nothing delivered
                _drop_connection()
                self.results[accepted.index] = TransientError(f"SMTP: {exc}")
                return exc
        if current is not None:
            try:
                conn.send((b"RSET\r\n" if self.reset else b"") + current.envelope)
            except (OSError, smtplib.SMTPException) as exc:
                _drop_connection()
                if accepted is not None:
                    self.results[accepted.index] = OutcomeUnknown(
                        f"no answer after the message was sent: {exc}"
                    )
                return exc
        if accepted is not None:
            try:
                code, text = conn.getreply()
            except (OSError, smtplib.SMTPException) as exc:  # the server has it; did it take it? (RFC 1047)
                _drop_connection()
                self.results[accepted.index] = OutcomeUnknown(f"no answer after the message was sent: {exc}")
                return exc
            # The transaction ends with this reply, taken or not: the next MAIL needs no RSET.
            self.results[accepted.index] = (
                accepted.message_id if code == 250 else _by_code(code, text, "sending the message")
            )
        if current is None:
            return None
        return self._envelope_replies(conn, current)

    def _envelope_replies(self, conn: smtplib.SMTP, current: _Ready) -> Exception | None:
        try:
            if self.reset:
                self.reset = False
                if conn.getreply()[0] != 250:
                    raise smtplib.SMTPException("RSET refused")
            replies = [conn.getreply() for _ in _ENVELOPE]
        except (OSError, smtplib.SMTPException) as exc:
            _drop_connection()
            return exc
        refused = _refusal(replies)
        if refused is None:
            self.accepted = current
        else:
            self.results[current.index] = refused
            if replies[-1][0] == 354:  # the server waits for content we will not send: only closing aborts
                _drop_connection()
            else:
                self.reset = True
        return None
