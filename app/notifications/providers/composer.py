"""An email's wire form, composed by the standard library: `email.message.EmailMessage` under the
SMTP policy (CRLF line ends, headers folded at 78 columns, non-ASCII as RFC 2047 encoded words),
a text part and, when the template has one, an HTML alternative."""

from __future__ import annotations

import functools
import json
import secrets
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from html import escape as html_escape

from app.notifications.providers.transport import Outgoing, message_id


class _UriListHeader:
    """RFC 2369's list of <URI>s (List-Unsubscribe): folded only between the URIs, never encoded.
    As an unstructured header, a URI longer than a line would be turned into encoded words, which no
    mailbox provider reads as a link."""

    max_count = 1

    @classmethod
    def parse(cls, value, kwds):
        kwds["decoded"] = " ".join(str(value).split())
        kwds["parse_tree"] = None

    def fold(self, *, policy):
        uris = [uri.strip() for uri in str(self).split(",") if uri.strip()]
        return f"{self.name}: " + ("," + policy.linesep + " ").join(uris) + policy.linesep


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", _UriListHeader)
# 7bit: a text part that is ASCII with short lines goes as it is, anything else quoted-printable or
# base64, so the message needs nothing of the server (no 8BITMIME).
POLICY = email_policy.SMTP.clone(header_factory=_HEADERS, cte_type="7bit")


def email_bytes(message: Outgoing) -> bytes:
    """The message as it goes over the wire: headers, a blank line, the body (not yet dot-stuffed)."""
    return email_message(message).as_bytes(policy=POLICY)


def email_message(message: Outgoing) -> EmailMessage:
    email = EmailMessage(policy=POLICY)
    email["Subject"] = _one_line(message.subject)
    email["From"] = _header("From", message.sender)  # the clinic's name and address
    if message.reply_to:
        email["Reply-To"] = _header("Reply-To", message.reply_to)
    email["To"] = _one_line(message.to)  # a checked plain address
    email["Message-ID"] = message_id(message)
    email["Date"] = datetime.now(UTC)  # RFC 5322 requires it; filters penalise its absence
    email["X-Followup-Key"] = _one_line(message.dedupe_key)  # lets a receiver (and tests) spot a duplicate
    # SendGrid echoes a unique_arg back as a field of every event about the message (delivered,
    # open, bounce): how its Event Webhook finds our notification.
    email["X-SMTPAPI"] = json.dumps({"unique_args": {"notification_id": str(message.notification_id)}})
    text, html = message.text, message.html
    if message.unsubscribe_url:
        # The mailbox providers' bulk-sender rules: one-click unsubscribe (RFC 8058), a mailto for
        # the clients that only write, and a line in the body for the reader.
        uris = [
            message.unsubscribe_url,
            *([message.unsubscribe_mailto] if message.unsubscribe_mailto else []),
        ]
        email["List-Unsubscribe"] = ", ".join(f"<{uri}>" for uri in uris)
        email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        text = f"{text}\n\n--\nTo stop these emails: {message.unsubscribe_url}\n"
        if html:
            link = html_escape(message.unsubscribe_url)
            html = (
                f'{html}<p style="font-size:small">To stop these emails: <a href="{link}">unsubscribe</a></p>'
            )
    email.set_content(text)
    if html:
        email.add_alternative(html, subtype="html")
        # Given, not searched for: the generator would otherwise compile a regex per message to make
        # sure its random boundary does not occur in the parts ("=_" never does in QP or base64).
        email.set_boundary(f"=_{secrets.token_hex(16)}")
    return email


def _one_line(value: str | None) -> str:
    """A line break in a value becomes a space: a value never starts a header of its own."""
    value = value or ""
    return " ".join(value.split()) if ("\r" in value or "\n" in value) else value


@functools.lru_cache(maxsize=256)
def _header(name: str, value: str):
    """An address header parsed once per value (a clinic's From is the same on every email)."""
    return POLICY.header_factory(name, _one_line(value))
