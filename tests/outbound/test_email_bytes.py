"""The wire form of an email, composed by the standard library (EmailMessage, SMTP policy): what the
parser reads back from it is exactly what was rendered, every line is one an SMTP server takes, and
List-Unsubscribe stays a list of URIs a mailbox provider can read."""

from __future__ import annotations

import json
import re
from email import message_from_bytes
from email.policy import default

import pytest

from app.domains.outbound.providers import channels, composer, smtp

TRICKY = "\n".join(
    [
        "Dear Ana, your consultation is on Tuesday.",
        ".a line starting with a dot",
        ".",
        "From the start of a line",
        "trailing spaces   ",
        "tabs\tand = signs == and =41",
        "x" * 1200,  # longer than SMTP's 998-byte line limit
        "naïve café — 😀",
        "a CR line end\rand a CRLF one\r\nand the last",
    ]
)


def outgoing(**fields) -> channels.Outgoing:
    values = {
        "notification_id": 1,
        "channel": "email",
        "to": "ana@example.com",
        "sender": channels.format_sender("Clínica Sonrisa", "hello@clinic.example"),
        "subject": "Your consultation",
        "text": "See you on Tuesday.\n",
        "html": "<p>See you on Tuesday.</p>",
        "dedupe_key": "lead:1:followup:3",
    }
    return channels.Outgoing(**(values | fields))


def parsed(message: channels.Outgoing):
    return message_from_bytes(composer.email_bytes(message), policy=default)


def lines_normalised(text: str) -> str:
    """One kind of line end, and no last one (the composer ends every part with a line end)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").removesuffix("\n")


@pytest.mark.parametrize(
    "subject",
    [
        "Your consultation",
        "¿Nos vemos el martes? Su cita de ortodoncia — Clínica Sonrisa",
        " ".join(["a long subject that must be folded"] * 8),
    ],
    ids=["ascii", "non-ascii", "long"],
)
@pytest.mark.parametrize("html", ["<p>Hello</p>\n<p>" + "é" * 300 + "</p>", None], ids=["html", "text-only"])
def test_the_parser_reads_back_every_header_and_part_exactly(subject, html):
    message = outgoing(subject=subject, text=TRICKY, html=html)
    email = parsed(message)
    assert email["Subject"] == subject
    assert email["From"] == "Clínica Sonrisa <hello@clinic.example>"
    assert email["To"] == "ana@example.com"
    assert email["Message-ID"] == channels.message_id(message)
    assert email["X-Followup-Key"] == "lead:1:followup:3"
    assert email.get_body(("plain",)).get_content_charset() == "utf-8"
    assert lines_normalised(email.get_body(("plain",)).get_content()) == lines_normalised(TRICKY)
    if html is None:
        assert email.get_content_type() == "text/plain" and not email.is_multipart()
    else:
        assert email.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in email.iter_parts()] == ["text/plain", "text/html"]
        assert lines_normalised(email.get_body(("html",)).get_content()) == lines_normalised(html)
    assert not email.defects and not any(p.defects for p in email.walk())


def test_every_line_is_ascii_crlf_ended_and_short():
    raw = composer.email_bytes(outgoing(subject="¿" * 200 + " end", text=TRICKY, html=TRICKY))
    assert raw.isascii()
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    header, _, body = raw.partition(b"\r\n\r\n")
    assert max(len(line) for line in header.split(b"\r\n")) <= 78
    assert max(len(line) for line in body.split(b"\r\n")) <= 78


def test_a_line_break_in_a_value_cannot_start_a_header_of_its_own():
    email = parsed(outgoing(subject="Hello\r\nBcc: everyone@example.com", dedupe_key="k\nX-Evil: 1"))
    assert email["Bcc"] is None and email["X-Evil"] is None
    assert email["Subject"] == "Hello Bcc: everyone@example.com"


def test_a_message_is_dot_stuffed_once_for_the_wire():
    wire = smtp._dot_stuffed(composer.email_bytes(outgoing(text=".one\n..two\n.", html=None)))
    assert wire.endswith(b"\r\n.\r\n")
    body = wire.partition(b"\r\n\r\n")[2][: -len(b".\r\n")]
    assert not re.search(rb"(?m)^\.(?!\.)", body)  # every line starting with a dot has it doubled


URL = "https://engine.example/api/unsubscribe/1234567.0123456789abcdef0123456789abcdef"
MAILTO = (
    "mailto:unsubscribe+1234567.0123456789abcdef0123456789abcdef@reply.clinic.example?subject=unsubscribe"
)


def test_an_email_to_a_lead_carries_what_the_mailbox_providers_and_sendgrid_read():
    message = outgoing(
        notification_id=42,
        unsubscribe_url=URL,
        unsubscribe_mailto=MAILTO,
        reply_to="reply+1234567.0123456789abcdef0123456789abcdef@reply.clinic.example",
    )
    raw = composer.email_bytes(message)
    email = parsed(message)
    assert email["Date"] and email["Message-ID"] == channels.message_id(message)
    assert email["Reply-To"] == message.reply_to
    # Two URIs, folded between them, never as encoded words (which no mailbox provider reads).
    assert b"List-Unsubscribe: <" + URL.encode() + b">,\r\n <" + MAILTO.encode() + b">\r\n" in raw
    assert [uri.strip() for uri in email["List-Unsubscribe"].split(",")] == [f"<{URL}>", f"<{MAILTO}>"]
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert json.loads(email["X-SMTPAPI"]) == {"unique_args": {"notification_id": "42"}}
    assert URL in email.get_body(("plain",)).get_content()
    assert f'href="{URL}"' in email.get_body(("html",)).get_content()
    assert raw.isascii() and not email.defects


def test_the_from_keeps_the_clinics_name():
    email = parsed(outgoing())
    assert email["From"].addresses[0].display_name == "Clínica Sonrisa"
    assert email["From"].addresses[0].addr_spec == "hello@clinic.example"
