"""An email's wire form: the MIME message (text, and HTML when there is one) with its headers folded
and encoded."""

from __future__ import annotations

import binascii
import secrets
from email.header import Header
from email.utils import formatdate
from html import escape as html_escape

from app.notifications.providers.transport import (
    Outgoing,
    message_id,
)

# Written directly, not through the email package's generator: rendering a multipart message there
# (header folding, a boundary regex compiled per message) cost about two thirds of a delivering
# worker's CPU. The structure is fixed and small: text, or multipart/alternative of text and HTML,
# each part UTF-8 quoted-printable (binascii: lines stay under 76 bytes whatever the template
# renders), CRLF line ends. tests/notifications/test_email_bytes.py checks what the stdlib parser
# reads back from it.
_MAX_HEADER = 78

CRLF = "\r\n"


def email_bytes(message: Outgoing) -> bytes:
    """The message as it goes over the wire: headers, a blank line, the body (not yet dot-stuffed)."""
    headers = [
        _header("Subject", message.subject),
        _header("From", message.sender),  # formataddr already encoded a non-ASCII display name
        _header("To", message.to),  # a checked plain address
        _header("Message-ID", message_id(message)),
        _header("Date", formatdate(usegmt=True)),  # RFC 5322 requires it; filters penalise its absence
        _header("X-Followup-Key", message.dedupe_key),  # lets a receiver (and our tests) spot a duplicate
        b"MIME-Version: 1.0\r\n",
    ]
    text, html = message.text, message.html
    if message.reply_to:
        headers.insert(2, _header("Reply-To", message.reply_to))
    if message.unsubscribe_url:
        # The mailbox providers' bulk-sender rules: one-click unsubscribe (RFC 8058), and a line
        # in the body for the reader.
        # Unfolded: a URL has no place to fold, and 78 columns is a SHOULD (998 the limit).
        headers.insert(-1, f"List-Unsubscribe: <{message.unsubscribe_url}>\r\n".encode("ascii"))
        headers.insert(-1, b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        text = f"{text}\n\n--\nTo stop these emails: {message.unsubscribe_url}\n"
        if html:
            link = html_escape(message.unsubscribe_url)
            html = (
                f'{html}<p style="font-size:small">To stop these emails: <a href="{link}">unsubscribe</a></p>'
            )
    if not html:
        return b"".join([*headers, *_part("plain", text)])
    boundary = f"=_{secrets.token_hex(16)}".encode()  # "=_" never occurs in quoted-printable text
    return b"".join(
        [
            *headers,
            b'Content-Type: multipart/alternative;\r\n boundary="' + boundary + b'"\r\n\r\n',
            b"--" + boundary + b"\r\n",
            *_part("plain", text),
            b"\r\n--" + boundary + b"\r\n",
            *_part("html", html),
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
