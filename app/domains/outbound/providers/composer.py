"""An email's wire form, composed by the standard library: `email.message.EmailMessage` under the
SMTP policy (CRLF line ends, headers folded at 78 columns, non-ASCII as RFC 2047 encoded words),
a text part and, when the template has one, an HTML alternative."""

from __future__ import annotations

import functools
import json
import secrets
from email import policy as email_policy
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.utils import formatdate
from html import escape as html_escape

from app.domains.outbound.providers.transport import Outgoing, message_id


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


class _Registry(HeaderRegistry):
    """The stdlib's registry, but each header's class is made once: HeaderRegistry makes a new class
    (type(...)) for every header of every message, which was the largest single cost of composing."""

    def __init__(self):
        super().__init__()
        self.map_to_type("list-unsubscribe", _UriListHeader)
        self._classes: dict[str, type] = {}

    def __getitem__(self, name):
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


class _Policy(email_policy.EmailPolicy):
    """The SMTP policy, with each header value parsed and folded once while it recurs: most of an
    email's headers are the same on every one (its From, MIME-Version, its parts' Content-Type and
    Content-Transfer-Encoding, often its Subject), and the email package's parser and folder were
    most of the cost of composing one. Header objects are immutable: sharing them is safe."""

    def header_store_parse(self, name, value):
        if isinstance(value, str) and not hasattr(value, "name"):
            return name, _stored(name, value)
        return super().header_store_parse(name, value)

    def fold_binary(self, name, value):
        memo = getattr(value, "__dict__", None)  # a header object (a str subclass); not a raw value
        if memo is None:
            return super().fold_binary(name, value)
        key = ("folded", name, self.linesep, self.max_line_length, self.cte_type, self.utf8)
        folded = memo.get(key)
        if folded is None:
            folded = memo[key] = super().fold_binary(name, value)
        return folded


@functools.lru_cache(maxsize=2048)
def _stored(name: str, value: str):
    return email_policy.EmailPolicy.header_store_parse(POLICY, name, value)[1]


# 7bit: a text part that is ASCII with short lines goes as it is, anything else quoted-printable or
# base64, so the message needs nothing of the server (no 8BITMIME).
POLICY = _Policy(linesep="\r\n", header_factory=_Registry(), cte_type="7bit")


def email_bytes(message: Outgoing) -> bytes:
    """The message as it goes over the wire: headers, a blank line, the body (not yet dot-stuffed)."""
    return email_message(message).as_bytes(policy=POLICY)


def email_message(message: Outgoing) -> EmailMessage:
    email = EmailMessage(policy=POLICY)
    email["Subject"] = _one_line(message.subject)
    email["From"] = _one_line(message.sender)  # the clinic's name and address
    if message.reply_to:
        email["Reply-To"] = _one_line(message.reply_to)
    email["To"] = _one_line(message.to)  # a checked plain address
    email["Message-ID"] = message_id(message)
    email["Date"] = formatdate(usegmt=True)  # RFC 5322 requires it; filters penalise its absence
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
        email.make_alternative(boundary=_boundary(text, html))
        email.add_alternative(html, subtype="html")
    return email


# The worker process's multipart boundary: the same on each of its emails, so their Content-Type is
# parsed and folded once. Given, not searched for: the generator would otherwise compile a regex per
# message to make sure a random one does not occur in the parts. "=_" never occurs in quoted-printable
# or base64; 7bit text would have to contain these random digits (then it gets a fresh one).
_BOUNDARY = f"=_{secrets.token_hex(16)}"


def _boundary(text: str, html: str) -> str:
    if _BOUNDARY in text or _BOUNDARY in html:
        return f"=_{secrets.token_hex(16)}"
    return _BOUNDARY


def _one_line(value: str | None) -> str:
    """A line break in a value becomes a space: a value never starts a header of its own."""
    value = value or ""
    return " ".join(value.split()) if ("\r" in value or "\n" in value) else value
