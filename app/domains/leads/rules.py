"""Pure lead rules: normalising contact data, matching duplicates. No I/O, no clock."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from difflib import SequenceMatcher

import phonenumbers

from app.domains.leads.models import LeadSourceCategory
from app.platform.roles import Role

# Who may own a lead: manual assignment, source mappings and the last-resort fallback use these.
COORDINATOR_ROLES = (Role.TREATMENT_COORDINATOR.value, Role.CLINIC_ADMIN.value)

# Who asked for a channel's opt-out (Lead.sms_opt_out_source, email_opt_out_source). The person's
# own is theirs to undo: a texted STOP only by their START (carriers and the TCPA expect it), the
# others by a new consent staff record with how the person gave it. An opt-out recorded before its
# source was (None) counts as the person's.
SMS_STOP, UNSUBSCRIBE, COMPLAINT, SUPPRESSED = "sms_stop", "unsubscribe", "complaint", "suppressed"
STAFF, BOUNCE = "staff", "bounce"
PERSONS_OWN = frozenset({SMS_STOP, UNSUBSCRIBE, COMPLAINT, SUPPRESSED, None})
# Each channel's opt-out field and the column of its source.
OPT_OUT_SOURCE = {
    "sms_opt_out": "sms_opt_out_source",
    "email_opt_out": "email_opt_out_source",
    "whatsapp_opt_out": "whatsapp_opt_out_source",
}
# How a person gave the new consent staff record over their own opt-out.
CONSENT_SOURCES = ("in_person", "written", "phone_call", "email")


def staff_opt_in_refusal(field: str, source: str | None, consent_source: str | None) -> str | None:
    """Why staff may not turn the opt-out `field` ("sms_opt_out", "email_opt_out") off, whose
    source is `source`; None: they may (with a reason)."""
    if source == SMS_STOP or (field == "sms_opt_out" and source is None):
        return "the person texted STOP: only their own START re-opens texting"
    if source in PERSONS_OWN and consent_source is None:
        return (
            "the person opted out themselves: record their new consent and how they gave it (consent_source)"
        )
    return None


# GET /api/leads/search?limit=: a search box shows a handful; more is the list, with its pages.
SEARCH_LIMIT = 20

# GET /api/leads?sort=<field> or -<field>.
SORT_FIELDS = (
    "created_at",
    "updated_at",
    "last_name",
    "first_name",
    "stage_entered_at",
    "assigned_at",
    "status",
    "pipeline_stage",
    "score",  # descending puts unscored leads last
    "priority",  # by urgency, not by name: -priority puts urgent leads first
)

# Two names this alike (difflib ratio, after case folding and accent stripping) are "the same
# person" when the date of birth also matches: catches "Jon Smith" / "John Smith".
NAME_SIMILARITY_THRESHOLD = 0.85

# One source per category for a new clinic, so leads can be attributed from day one.
DEFAULT_SOURCES = (
    ("Doctor referral", LeadSourceCategory.DOCTOR_REFERRAL),
    ("Patient referral", LeadSourceCategory.PATIENT_REFERRAL),
    ("Website (organic search)", LeadSourceCategory.WEB_ORGANIC),
    ("Online ads", LeadSourceCategory.WEB_PAID),
    ("Social media", LeadSourceCategory.WEB_SOCIAL),
    ("Print advertising", LeadSourceCategory.PRINT_AD),
    ("Community event", LeadSourceCategory.COMMUNITY_EVENT),
    ("School screening", LeadSourceCategory.SCHOOL_SCREENING),
    ("Walk-in", LeadSourceCategory.WALK_IN),
    ("Other", LeadSourceCategory.OTHER),
)


class InvalidPhone(ValueError):
    """The text is not a valid phone number for the region."""


# The patient's age group at capture, kept on the lead beside the encrypted date of birth so the
# lead score reads it without decrypting every lead (a band this wide is not PHI; the DOB is).
CHILD, TEEN, ADULT = "child", "teen", "adult"
AGE_GROUPS = (CHILD, TEEN, ADULT)


def years_between(born: date | None, at: datetime) -> float | None:
    if born is None:
        return None
    return (at.date() - born).days / 365.25


def age_group(born: date | None, at: datetime) -> str | None:
    """The patient's age group at `at` (None: no date of birth, or one after `at`)."""
    age = years_between(born, at)
    if age is None or age < 0:
        return None
    if age < 13:
        return CHILD
    if age < 18:
        return TEEN
    return ADULT


def normalize_phone(raw: str, region: str) -> str:
    """E.164 form of `raw` (national numbers read in `region`), else InvalidPhone."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(f"{raw!r} is not a valid phone number (region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """Emails compare case-insensitively; store them trimmed and lower-cased."""
    return raw.strip().lower()


def normalize_name(first: str | None, last: str | None) -> str:
    """A full name folded for comparison: no accents, no case, single spaces."""
    text = f"{first or ''} {last or ''}"
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[^\w\s]", " ", text.casefold())
    return " ".join(text.split())


def names_similar(a: str, b: str) -> bool:
    """True when two normalised names are near-identical."""
    if not a or not b:
        return False
    return SequenceMatcher(None, a, b).ratio() >= NAME_SIMILARITY_THRESHOLD


def split_full_name(name: str) -> tuple[str, str]:
    """'Mary Ann Smith' → ('Mary Ann', 'Smith'); a single word is a first name."""
    parts = name.split()
    if not parts:
        return "", ""
    if len(parts) == 1:
        return parts[0], ""
    return " ".join(parts[:-1]), parts[-1]


@dataclass
class DuplicateProbe:
    """What a new lead offers for matching."""

    phones: set[str] = field(default_factory=set)
    email: str | None = None
    dob_index: str | None = None
    names: set[str] = field(default_factory=set)
    # The DOB's index under every configured PHI key: during a key rotation an older lead's index
    # may still be under the previous key (app/domains/privacy/rotation.py).
    dob_indexes: set[str] = field(default_factory=set)


@dataclass
class Candidate:
    """An existing open lead, reduced to what matching needs."""

    lead_id: int
    phones: set[str]
    email: str | None
    dob_index: str | None
    names: set[str]


def match_reasons(probe: DuplicateProbe, candidate: Candidate) -> list[str]:
    """Why `candidate` may be the same family as `probe`: any of phone, email, name_dob."""
    reasons = []
    if probe.phones & candidate.phones:
        reasons.append("phone")
    if probe.email and probe.email == candidate.email:
        reasons.append("email")
    if (
        candidate.dob_index
        and candidate.dob_index in (probe.dob_indexes | {probe.dob_index})
        and any(names_similar(a, b) for a in probe.names for b in candidate.names)
    ):
        reasons.append("name_dob")
    return reasons
