"""Provider error texts without the person they were about.

Providers quote the recipient in their errors (Twilio: "The 'To' number +14155550123 is not a valid
phone number"; SMTP: "550 5.1.1 <ann@example.org>: Recipient address rejected"; our own checks:
"invalid phone number '+1…'"). Such a text is stored on the message (`last_error`), shown to staff,
copied into audit details and logged: it is redacted once, where the error becomes text
(`redacted`), so every copy is clean and erasure has nothing to look for in it later.
"""

from __future__ import annotations

import re

RECIPIENT = "[recipient]"
PHONE = "[phone]"
EMAIL = "[email]"

_EMAIL = re.compile(r"[^\s<>()\[\]@,;:\"'`]+@[^\s<>()\[\]@,;:\"'`]+\.[A-Za-z]{2,}")
# A phone number: E.164, a North American number as people write it ("(415) 555-0123",
# "+1 415-555-0123"), or a bare run of 10 to 15 digits. An IP address, an SMTP status ("5.1.1"), a
# provider's error code ("30003") or a date is none of these.
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_NANP = re.compile(r"(?<![\w.])(?:\+?1[\s-]?)?\(?\d{3}\)?[\s-]?\d{3}[\s-]?\d{4}(?!\d)")
_DIGITS = re.compile(r"(?<!\d)\d{10,15}(?!\d)")


def redacted(text: str | None, *recipients: str | None) -> str | None:
    """`text` with each of `recipients` (as given, case-insensitively) and any e-mail address or
    phone number replaced by a placeholder: what may be stored, shown and logged."""
    if not text:
        return text
    for recipient in recipients:
        if recipient and recipient.strip():
            text = re.sub(re.escape(recipient.strip()), RECIPIENT, text, flags=re.IGNORECASE)
    text = _EMAIL.sub(EMAIL, text)
    for pattern in (_E164, _NANP, _DIGITS):
        text = pattern.sub(PHONE, text)
    return text
