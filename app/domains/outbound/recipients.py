"""Finding messages by their recipient: a keyed blind index of the normalised address beside the
encrypted `to_address`.

The address is a Fernet token (a new one each time it is written), so SQL cannot compare it, let alone
search inside it; `to_address_index` is an HMAC of the normalised address within the clinic
(app/platform/phi.py), written with the row, which an exact search compares. An email is compared trimmed and
lower-cased, a phone number in E.164 (what the row holds: a lead's phone is stored that way), read in
the clinic's region when typed as a national number.
"""

from __future__ import annotations

from contextlib import suppress

import phonenumbers

from app.domains.leads import rules as lead_rules
from app.platform import phi

PURPOSE = "notification_to"


def normalized(address: str) -> str:
    """The form of an address the index is made of: an email lower-cased, anything else trimmed."""
    address = address.strip()
    return lead_rules.normalize_email(address) if "@" in address else address


def index_of(*, keys: str, clinic_id: int, address: str | None) -> str | None:
    """The blind index a row to `address` is written with (None without an address)."""
    if not address or not address.strip():
        return None
    return phi.blind_index(keys=keys, purpose=PURPOSE, scope=str(clinic_id), value=normalized(address))


def indexes_to_find(*, keys: str, clinic_id: int, text: str, region: str) -> list[str]:
    """The index values a search for `text` matches: under every configured key (a rotation may be
    half-way), of the email, or of the phone number read in `region` and as typed."""
    values = {normalized(text)}
    if "@" not in text:
        # Read as typed (a national number in the clinic's region), not checked for validity: the
        # row holds whatever number the message went to.
        with suppress(phonenumbers.NumberParseException):  # not a phone number: only the text matches
            number = phonenumbers.parse(text, region)
            values.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return [
        index
        for value in sorted(values)
        if value
        for index in phi.blind_indexes(keys=keys, purpose=PURPOSE, scope=str(clinic_id), value=value)
    ]
