"""What erasure leaves of a copied value: pure functions, no database (app/domains/privacy/erasure.py uses
them).

`ids_only` reduces a payload or an audit change to the ids that tell which row it was about;
`structure_only` keeps the shape of what a rule saw (which field, which operator, which rule) and
drops every value; `is_persons_row` tells whether an import's input row describes the person erased;
`needles` and `quotes` find a text quoting the person (a staff message naming the lead).
"""

from __future__ import annotations

import re

# Keys whose string values are the engine's own vocabulary (a rule's field and operator, what made a
# task), never the person's: an origin or a why-trail keeps them, so it still says which rule and
# condition acted, without what they saw.
VOCABULARY = frozenset({"kind", "field", "operator", "event_type", "sweep", "action_type", "type"})


def _is_id_key(key) -> bool:
    return isinstance(key, str) and (key == "id" or key.endswith("_id") or key.endswith("_ids"))


def ids_only(value):
    """A payload reduced to what identifies rows: keys naming ids (`*_id`, `*_ids`, `id`) with
    integer values, and booleans; nothing else (names, text, dates of birth) survives."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, item in value.items():
        ids = isinstance(item, int) or (isinstance(item, list) and all(isinstance(i, int) for i in item))
        if isinstance(item, bool) or (_is_id_key(key) and ids):
            out[key] = item
        elif isinstance(item, dict):
            nested = ids_only(item)
            if nested:
                out[key] = nested
    return out


def structure_only(value, key=None):
    """`value` (an origin, a why-trail's conditions) with its dicts and lists kept and every leaf
    emptied (None), except ids and the engine's vocabulary (`VOCABULARY`): which rule and condition
    acted stays, what they saw and whether it held goes."""
    if isinstance(value, dict):
        return {k: structure_only(item, k) for k, item in value.items()}
    if isinstance(value, list):
        return [structure_only(item, key) for item in value]
    if isinstance(value, str) and key in VOCABULARY:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and (_is_id_key(key) or key == "rule_version"):
        return value
    return None


def _digits(text) -> str:
    return re.sub(r"\D", "", text) if isinstance(text, str) else ""


def is_persons_row(row, *, emails: set[str], phones: set[str], names: set[tuple[str, str]]) -> bool:
    """Whether an import's input row (as sent: phones as typed) names the person: one of their
    emails, phones (compared by their last ten digits) or first and last names."""
    if not isinstance(row, dict):
        return False
    email = row.get("email")
    if isinstance(email, str) and email.strip().lower() in emails:
        return True
    for field in ("phone", "phone_alt"):
        digits = _digits(row.get(field))
        if len(digits) >= 7 and digits[-10:] in phones:
            return True
    name = (str(row.get("first_name") or "").strip().lower(), str(row.get("last_name") or "").strip().lower())
    return name in names


def needles(lead, erased: str) -> list[str]:
    """What a text quoting the lead's person would contain (lower case): phones, email, member id,
    names and date of birth; none of a lead already erased (`erased`: the tombstone's name)."""
    values = [lead.phone, lead.phone_alt, lead.email, lead.insurance_member_id]
    for first, last in ((lead.first_name, lead.last_name), (lead.patient_first_name, lead.patient_last_name)):
        if first and last:
            values.append(f"{first} {last}")
    if lead.patient_dob is not None:
        values.append(lead.patient_dob.isoformat())
    return [v.lower() for v in values if v and v != erased]


def quotes(needles: list[str], *texts) -> bool:
    """Whether any of the texts contains any of the needles (case-insensitive)."""
    joined = " ".join(t for t in texts if t).lower()
    return any(n in joined for n in needles)
