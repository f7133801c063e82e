"""The wire form of an email, written without the email package's generator: what the stdlib parser
reads back from it is exactly what was rendered, and every line is one an SMTP server takes."""

from __future__ import annotations

import re
from email import message_from_bytes
from email.policy import default

import pytest

from app.notifications.providers import channels, mime, smtp

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
    return message_from_bytes(mime.email_bytes(message), policy=default)


def lines_normalised(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


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
        assert lines_normalised(email.get_body(("html",)).get_content()) == html
    assert not email.defects and not any(p.defects for p in email.walk())


def test_every_line_is_ascii_crlf_ended_and_short():
    raw = mime.email_bytes(outgoing(subject="¿" * 200 + " end", text=TRICKY, html=TRICKY))
    assert raw.isascii()
    assert b"\r" not in raw.replace(b"\r\n", b"") and b"\n" not in raw.replace(b"\r\n", b"")
    header, _, body = raw.partition(b"\r\n\r\n")
    assert max(len(line) for line in header.split(b"\r\n")) <= 78
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_a_line_break_in_a_value_cannot_start_a_header_of_its_own():
    email = parsed(outgoing(subject="Hello\r\nBcc: everyone@example.com", dedupe_key="k\nX-Evil: 1"))
    assert email["Bcc"] is None and email["X-Evil"] is None
    assert email["Subject"] == "Hello Bcc: everyone@example.com"


def test_a_message_is_dot_stuffed_once_for_the_wire():
    wire = smtp._dot_stuffed(mime.email_bytes(outgoing(text=".one\n..two\n.", html=None)))
    assert wire.endswith(b"\r\n.\r\n")
    body = wire.partition(b"\r\n\r\n")[2][: -len(b".\r\n")]
    assert not re.search(rb"(?m)^\.(?!\.)", body)  # every line starting with a dot has it doubled
