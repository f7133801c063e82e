"""Pure rules of notifications: staff channels per kind and summary frequencies (quiet hours and local
days: app/domains/business_hours/rules.py; the retry backoff: app/platform/delivery/rules.py)."""

from __future__ import annotations

IN_APP, EMAIL, SMS = "in_app", "email", "sms"
STAFF_KINDS = (
    "reminder",
    "overdue",
    "overdue_digest",
    "escalation",
    "new_lead",
    "new_task",
    "digest",
    "sla_warning",
)
# In-app is always stored (it is silent). What staff are promised "in-app and email" — reminders,
# overdue notices and the hourly overdue digest, escalations — also goes by email
# unless the user turns it off in their preferences; the rest only when asked for; the digest is an
# email by nature.
DEFAULT_CHANNELS = {
    "reminder": [IN_APP, EMAIL],
    "overdue": [IN_APP, EMAIL],
    "escalation": [IN_APP, EMAIL],
    "sla_warning": [IN_APP, EMAIL],  # an SLA about to be missed: the owner may be away from the app
    "new_lead": [IN_APP],
    "new_task": [IN_APP],
    "digest": [EMAIL],
    "overdue_digest": [IN_APP, EMAIL],
}
ALLOWED_CHANNELS = dict.fromkeys(STAFF_KINDS, (IN_APP, EMAIL, SMS)) | {"digest": (EMAIL,)}
# The analytics summary email (app/domains/analytics/summary.py) goes to clinic admins only, each choosing
# how often; daily by default, at 8 AM.
SUMMARY_FREQUENCIES = ("daily", "weekly", "off")
DEFAULT_SUMMARY_FREQUENCY = "daily"


def channels_for(kind: str, chosen: dict | None) -> list[str]:
    """The channels a staff member gets `kind` on: their choice, else the default; in-app always."""
    picked = (chosen or {}).get(kind)
    channels = list(DEFAULT_CHANNELS.get(kind, [IN_APP]) if picked is None else picked)
    if kind != "digest" and IN_APP not in channels:
        channels.insert(0, IN_APP)
    return channels
