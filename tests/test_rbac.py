"""The RBAC matrix, generated from the URL map and checked against DESIGN.md's table.

Every registered endpoint must appear in DESIGN_TABLE with the permission the design gives it, must
declare that permission in code, and must answer 403 exactly to the roles that lack it.
"""

from __future__ import annotations

import re

import pytest

PUBLIC = "public"
ANY = "any"
PLATFORM = "platform"
READ, CREATE, UPDATE, ASSIGN, CONVERT, CONFIGURE, ANALYTICS, ERASE = (
    "lead:read", "lead:create", "lead:update", "lead:assign", "lead:convert", "lead:configure",
    "lead:analytics", "lead:erase",
)  # fmt: skip

# The spec's access table (lead-management.md "Access Control"; issue 14 item 11), with the clinic
# admin's "everything" (docs/guides/api.md, "Roles"): written out here independently of
# app/domains/auth, so a drift in code fails the test.
ROLE_PERMISSIONS = {
    "front_desk": {READ, CREATE},
    "treatment_coordinator": {READ, CREATE, UPDATE, ASSIGN, CONVERT},
    "clinic_admin": {READ, CREATE, UPDATE, ASSIGN, CONVERT, CONFIGURE, ANALYTICS, ERASE},
    "doctor": {ANALYTICS},
}

# DESIGN.md "The REST API" table; path parameters are written <id>.
DESIGN_TABLE = {
    "POST /api/auth/login": PUBLIC,
    "POST /api/auth/refresh": PUBLIC,
    # Issue 34: the refresh token (logout) or the one-time setup token is the credential.
    "POST /api/auth/logout": PUBLIC,
    "POST /api/auth/password-setup": PUBLIC,
    "POST /api/auth/password-reset": PUBLIC,
    "POST /api/me/password": ANY,
    "POST /api/users/<id>/invitation": CONFIGURE,
    # Issue 58: a second factor; enrolment is asked with the password (an admin made to enrol
    # cannot log in before it), one's own factor with a code, another user's reset by an admin.
    "POST /api/auth/second-factor": PUBLIC,
    "POST /api/auth/second-factor/confirm": PUBLIC,
    "GET /api/me/second-factor": ANY,
    "POST /api/me/second-factor/disable": ANY,
    "POST /api/me/second-factor/recovery-codes": ANY,
    "DELETE /api/users/<id>/second-factor": CONFIGURE,
    # Issue 34: the platform operator, outside every clinic's roles (no role has it).
    "POST /api/platform/clinics": PLATFORM,
    # Issue 42: the email domains the operator verified for a clinic (its email_from's domain).
    "GET /api/platform/clinics/<id>/sender-domains": PLATFORM,
    "POST /api/platform/clinics/<id>/sender-domains": PLATFORM,
    # Issue 58: the SMS numbers and Messaging Services the operator assigns to a clinic.
    "GET /api/platform/clinics/<id>/sms-senders": PLATFORM,
    "POST /api/platform/clinics/<id>/sms-senders": PLATFORM,
    "DELETE /api/platform/clinics/<id>/sms-senders/<id>": PLATFORM,
    "GET /api/platform/unclaimed-messages": PLATFORM,
    "POST /api/platform/unclaimed-messages/<id>/clinic": PLATFORM,
    "GET /api/me": ANY,
    "GET /api/clinic": READ,
    "PUT /api/clinic": CONFIGURE,
    "GET /api/users": CONFIGURE,
    "POST /api/users": CONFIGURE,
    "GET /api/users/<id>": CONFIGURE,
    "PUT /api/users/<id>": CONFIGURE,
    "GET /api/api-keys": CONFIGURE,
    "POST /api/api-keys": CONFIGURE,
    "PUT /api/api-keys/<id>": CONFIGURE,
    "DELETE /api/api-keys/<id>": CONFIGURE,
    "GET /api/signing-secrets": CONFIGURE,
    "POST /api/signing-secrets": CONFIGURE,
    "DELETE /api/signing-secrets/<id>": CONFIGURE,
    "POST /api/signing-secrets/<id>/rotate": CONFIGURE,
    "GET /api/clinic/webhook-secret": CONFIGURE,
    "DELETE /api/clinic/webhook-secret": CONFIGURE,
    "GET /api/leads": READ,
    "GET /api/leads/search": READ,  # issue 64: search as you type (the first matches, no total)
    "POST /api/leads": CREATE,
    "GET /api/leads/<id>": READ,
    "PUT /api/leads/<id>": UPDATE,
    "POST /api/leads/<id>/stage": UPDATE,
    # Duplicates to merge or dismiss (issue 64 item 3): changes to the leads, as staff make them.
    "POST /api/leads/<id>/merge": UPDATE,
    "POST /api/leads/<id>/duplicates/<id>/dismiss": UPDATE,
    "POST /api/leads/<id>/lost": UPDATE,
    "POST /api/leads/<id>/assign": ASSIGN,
    # Issue 34: erasing a person's data on request is the clinic admin's alone.
    "POST /api/leads/<id>/erase": ERASE,
    "POST /api/leads/<id>/convert": CONVERT,
    "POST /api/capture/web-form": PUBLIC,
    "POST /api/capture/inbound": PUBLIC,
    "GET /api/lead-sources": READ,
    "POST /api/lead-sources": CONFIGURE,
    "GET /api/lead-sources/<id>": READ,
    "PUT /api/lead-sources/<id>": CONFIGURE,
    "GET /api/pipeline-stages": READ,
    "POST /api/pipeline-stages": CONFIGURE,
    "GET /api/pipeline-stages/<id>": READ,
    "PUT /api/pipeline-stages/<id>": CONFIGURE,
    "PUT /api/pipeline-stages/reorder": CONFIGURE,
    "POST /api/pipeline-stages/reorder": CONFIGURE,
    "GET /api/leads/<id>/activities": READ,
    "POST /api/leads/<id>/activities": UPDATE,
    "GET /api/leads/<id>/tasks": READ,
    "POST /api/leads/<id>/tasks": UPDATE,
    "GET /api/leads/tasks/<id>": READ,
    "PUT /api/leads/tasks/<id>": UPDATE,
    "POST /api/leads/tasks/<id>/complete": UPDATE,
    "POST /api/leads/tasks/<id>/snooze": UPDATE,
    "POST /api/leads/tasks/<id>/cancel": UPDATE,
    "GET /api/leads/tasks/my-tasks": READ,
    "POST /api/me/next-task": UPDATE,
    "POST /api/me/next-task/<id>/renew": UPDATE,
    "POST /api/me/next-task/<id>/release": UPDATE,
    "GET /api/leads/tasks/overdue": READ,
    "POST /api/leads/tasks/bulk": UPDATE,
    # DESIGN gives task templates lead:configure; reading them is lead:read so that a coordinator
    # can pick a template when creating a task (see the closing note).
    "GET /api/task-templates": READ,
    "GET /api/task-templates/<id>": READ,
    "POST /api/task-templates": CONFIGURE,
    "PUT /api/task-templates/<id>": CONFIGURE,
    "DELETE /api/task-templates/<id>": CONFIGURE,
    "GET /api/follow-up-rules": READ,
    "GET /api/follow-up-passes": READ,
    "GET /api/follow-up-rules/active": READ,
    "GET /api/follow-up-rules/<id>": READ,
    "POST /api/follow-up-rules": CONFIGURE,
    "PATCH /api/follow-up-rules/<id>": CONFIGURE,
    "DELETE /api/follow-up-rules/<id>": CONFIGURE,
    "POST /api/follow-up-rules/<id>/test": CONFIGURE,
    "POST /api/follow-up-rules/<id>/simulate": CONFIGURE,
    # Issue 5: a rule's saved versions, readable like the rule itself.
    "GET /api/follow-up-rules/<id>/versions": READ,
    # Issue 5: reading sequences is lead:read (like task templates) so a coordinator can pick one
    # to enroll a lead in; changing them is lead:configure. Unenrolling is a lead:update like enrolling.
    "GET /api/sequences": READ,
    "POST /api/sequences": CONFIGURE,
    "GET /api/sequences/<id>": READ,
    "PUT /api/sequences/<id>": CONFIGURE,
    "GET /api/leads/<id>/enrollments": READ,
    "POST /api/leads/<id>/enrollments": UPDATE,
    "POST /api/leads/<id>/enrollments/<id>/unenroll": UPDATE,
    "GET /api/me/notifications": ANY,
    "POST /api/me/notifications/<id>/read": ANY,
    "GET /api/notifications": CONFIGURE,
    "POST /api/notifications/<id>/retry": CONFIGURE,
    "POST /api/notifications/retry": CONFIGURE,
    # Issue 6: each user's own notification preferences (like /api/me/notifications), and the SMS
    # provider's delivery receipts, signed like /api/capture/web-form.
    "GET /api/me/notification-preferences": ANY,
    "PUT /api/me/notification-preferences": ANY,
    "POST /api/providers/twilio/sms": PUBLIC,  # X-Twilio-Signature
    "POST /api/providers/twilio/status": PUBLIC,  # X-Twilio-Signature
    "POST /api/providers/sendgrid/events": PUBLIC,  # ECDSA-signed by SendGrid
    # Issue 59: a clinic's Instagram account, and Meta's webhook (handshake token, X-Hub-Signature-256).
    "GET /api/integrations/instagram": CONFIGURE,
    "PUT /api/integrations/instagram": CONFIGURE,
    "DELETE /api/integrations/instagram": CONFIGURE,
    "GET /api/leads/<id>/instagram": READ,
    "GET /api/webhooks/instagram": PUBLIC,  # hub.verify_token
    "POST /api/webhooks/instagram": PUBLIC,  # X-Hub-Signature-256
    "POST /api/providers/sendgrid/inbound/<id>": PUBLIC,  # the secret in the URL
    "GET /api/unsubscribe/<id>": PUBLIC,  # the signed token
    "POST /api/unsubscribe/<id>": PUBLIC,  # RFC 8058 one-click
    # Issue 60: a tracked link and the open pixel (signed tokens); a lead's and the clinic's engagement.
    "GET /r/<id>": PUBLIC,
    "GET /o/<id>.gif": PUBLIC,
    "GET /api/leads/<id>/engagement": READ,
    # Issue 62: the family's booking page (the clinic's public key, a lead's or a consultation's
    # signed link) and its settings.
    "GET /book/static/<id>": PUBLIC,
    "GET /book/<id>": PUBLIC,
    "POST /book/<id>": PUBLIC,
    "GET /book/l/<id>": PUBLIC,
    "POST /book/l/<id>": PUBLIC,
    "GET /book/c/<id>": PUBLIC,
    "POST /book/c/<id>": PUBLIC,
    "GET /api/booking-page/settings": READ,
    "PUT /api/booking-page/settings": CONFIGURE,
    "GET /api/engagement/stats": ANALYTICS,
    "GET /api/leads/analytics/funnel": ANALYTICS,
    "GET /api/leads/analytics/follow-ups": ANALYTICS,
    "GET /api/leads/analytics/forecast": ANALYTICS,  # app/domains/intelligence
    "GET /api/leads/<id>/best-contact-times": READ,  # app/domains/intelligence
    "GET /api/leads/analytics/sources": ANALYTICS,
    "GET /api/leads/analytics/coordinators": ANALYTICS,
    "GET /api/leads/analytics/lost-reasons": ANALYTICS,
    "GET /api/leads/analytics/speed-to-lead": ANALYTICS,
    # Issue 7: follow-up effectiveness is one more report of the same family.
    "GET /api/leads/analytics/follow-up": ANALYTICS,
    "GET /api/leads/analytics/follow-up-response": ANALYTICS,
    # Issue 17 item 10: the missing reports (conversion time, velocity, source trends, revenue/ROI).
    "GET /api/leads/analytics/time-to-convert": ANALYTICS,
    "GET /api/leads/analytics/lead-velocity": ANALYTICS,
    "GET /api/leads/analytics/source-trends": ANALYTICS,
    "GET /api/leads/analytics/revenue": ANALYTICS,
    "GET /api/leads/<id>/automation": READ,
    # Issue 17: team task views (a lead's tasks are lead:read already; these are the clinic's).
    "GET /api/leads/tasks": READ,
    "GET /api/leads/tasks/summary": READ,
    # Issue 17: the clinic-wide activity feed, and one activity (lead:read, audited).
    "GET /api/activities": READ,
    # Issue 17: bulk task actions, like bulk task creation (lead:update, 202 + the bulk job).
    "POST /api/leads/tasks/bulk-actions": UPDATE,
    "POST /api/sequences/<id>/enrollments": UPDATE,
    # Issue 17: caller ID, the phone system's webhook, signed like the web form.
    "POST /api/capture/call": PUBLIC,
    # Issue 17: rule and sequence statistics are reports (lead:analytics).
    "GET /api/follow-up-rules/stats": ANALYTICS,
    "GET /api/sequences/stats": ANALYTICS,
    # Issue 36: a step's variants are judged in a report (lead:analytics); keeping one changes the
    # sequence (lead:configure); a lead's SLA clocks are read like its why-trail (lead:read); the
    # hesitation reasons are one more report.
    "GET /api/sequences/<id>/steps/<id>/variants": ANALYTICS,
    "POST /api/sequences/<id>/steps/<id>/keep-variant": CONFIGURE,
    "GET /api/leads/<id>/sla": READ,
    "GET /api/leads/analytics/hesitation-reasons": ANALYTICS,
    "GET /api/leads/analytics/consultations": ANALYTICS,  # issue 46: show rate, acceptance, recovery
    "GET /api/leads/analytics/bookings": ANALYTICS,  # issue 62: how consultations were booked
    # Issue 17: exports of the lead list and the team task view (lead:read; PHI columns by role).
    "GET /api/leads/export": READ,
    "GET /api/leads/tasks/export": READ,
    "GET /api/activities/<id>": READ,
    # Issue 17: message templates, like sequences (read: lead:read, so a coordinator can pick one;
    # change: lead:configure), and a one-off message to a lead (lead:update, like logging a call).
    "GET /api/message-templates": READ,
    "POST /api/message-templates": CONFIGURE,
    "GET /api/message-templates/<id>": READ,
    "PUT /api/message-templates/<id>": CONFIGURE,
    "DELETE /api/message-templates/<id>": CONFIGURE,
    "POST /api/message-templates/<id>/preview": READ,
    "POST /api/leads/<id>/messages": UPDATE,
    # Issue 59: one conversation per lead and the team inbox.
    "GET /api/leads/<id>/conversation": READ,
    "POST /api/leads/<id>/conversation/messages": UPDATE,
    "POST /api/leads/<id>/conversation/read": READ,
    # Issue 76 item 5: resolving and reopening a conversation.
    "POST /api/leads/<id>/conversation/resolve": UPDATE,
    "POST /api/leads/<id>/conversation/reopen": UPDATE,
    "POST /api/leads/<id>/conversation/snooze": UPDATE,
    "GET /api/conversations": READ,
    "POST /api/conversations/<id>/link": UPDATE,
    "POST /api/conversations/<id>/capture": CREATE,
    # A message's image or video: lead:read, and the PHI policy (front desk: 403) in the service.
    "GET /api/leads/<id>/conversation/messages/<id>/media/<id>": READ,
    "GET /api/jobs": CONFIGURE,
    "GET /api/jobs/<id>": CONFIGURE,
    "POST /api/jobs/<id>/retry": CONFIGURE,
    "GET /api/bulk-jobs": READ,
    "POST /api/bulk-jobs/<id>/cancel": UPDATE,
    "GET /api/bulk-jobs/<id>": READ,
    "GET /api/bulk-jobs/<id>/rows": READ,
    "POST /api/leads/import": CREATE,
    "GET /api/audit-events": CONFIGURE,
    "GET /api/webhooks": CONFIGURE,
    "POST /api/webhooks": CONFIGURE,
    "DELETE /api/webhooks/<id>": CONFIGURE,
    # Issue 7: a subscription's delivery history belongs with its subscription (lead:configure).
    "GET /api/webhooks/<id>/deliveries": CONFIGURE,
    "POST /api/webhooks/<id>/deliveries/<id>/redeliver": CONFIGURE,
    "GET /api/calendar/<id>.ics": PUBLIC,
    # Issue 46: consultations. Reading them is reading the lead; the front desk books, moves,
    # cancels and checks families in (lead:create, as capturing a lead); a booking system's
    # appointment events are signed like the web form.
    "GET /api/leads/<id>/consultations": READ,
    "POST /api/leads/<id>/consultations": CREATE,
    "GET /api/consultations": READ,
    "GET /api/consultations/<id>": READ,
    "PUT /api/consultations/<id>": CREATE,
    "POST /api/consultations/<id>/cancel": CREATE,
    "POST /api/consultations/<id>/check-in": CREATE,
    "POST /api/consultations/<id>/no-show": CREATE,
    "POST /api/capture/appointment": PUBLIC,
    # Issue 62: availability. The clinic's admin sets it up; staff read it and the free slots, and
    # the front desk, which books, sees and resolves the clashes a practice system was let make.
    "GET /api/availability/settings": READ,
    "PUT /api/availability/settings": CONFIGURE,
    "GET /api/availability/providers": READ,
    "POST /api/availability/providers": CONFIGURE,
    "GET /api/availability/providers/<id>": READ,
    "PUT /api/availability/providers/<id>": CONFIGURE,
    "GET /api/availability/types": READ,
    "POST /api/availability/types": CONFIGURE,
    "GET /api/availability/types/<id>": READ,
    "PUT /api/availability/types/<id>": CONFIGURE,
    "GET /api/availability/closures": READ,
    "POST /api/availability/closures": CONFIGURE,
    "DELETE /api/availability/closures/<id>": CONFIGURE,
    "GET /api/availability": READ,
    "GET /api/availability/clashes": READ,
    "POST /api/availability/clashes/<id>/resolve": CREATE,
    # Issue 46: a lead's long timers. Reading them is reading the lead; the front desk sets and
    # cancels recalls as it books consultations.
    "GET /api/leads/<id>/recalls": READ,
    "POST /api/leads/<id>/recalls": CREATE,
    "GET /api/leads/<id>/timers": READ,
    "POST /api/recalls/<id>/cancel": CREATE,
    # Issue 46: the clinic's outreach pause is read like its settings and set like its rules.
    "GET /api/clinic/outreach-pause": READ,
    "POST /api/clinic/outreach-pause": CONFIGURE,
    "DELETE /api/clinic/outreach-pause": CONFIGURE,
    # Issue 7: rotating one's own calendar token is a /api/me action (any signed-in user).
    "POST /api/me/calendar-token": ANY,
    # Issue 47: a token that opens the caller's own live event stream (GET /api/me/events).
    "POST /api/me/stream-token": ANY,
    "GET /metrics": PUBLIC,
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
}

# The OpenAPI document and its assets; and the console's pages, which authenticate by their session
# cookie (tests/console/test_console_access.py checks each page's permission per role).
SKIPPED_ENDPOINTS = ("api-docs.", "swagger_ui_static.", "static", "console.")


def _normalise(rule: str) -> str:
    return re.sub(r"<[^>]+>", "<id>", rule)


def _concrete(rule: str) -> str:
    return re.sub(r"<[^>]+>", "999999", rule)


def registered_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(SKIPPED_ENDPOINTS):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def test_every_endpoint_is_in_the_design_table_and_declares_its_permission(app):
    from app.platform.access import declared_access

    problems = []
    for method, rule in registered_routes(app):
        key = f"{method} {_normalise(rule.rule)}"
        expected = DESIGN_TABLE.get(key)
        permission, public_reason = declared_access(app.view_functions[rule.endpoint], method)
        if expected is None:
            problems.append(f"{key}: not in DESIGN.md's table")
        elif expected == PUBLIC and not public_reason:
            problems.append(f"{key}: should be public (signature/token/probe) but declares {permission}")
        elif expected != PUBLIC and permission != expected:
            problems.append(f"{key}: declares {permission or 'nothing'}, design says {expected}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("role", sorted(ROLE_PERMISSIONS))
def test_each_role_is_refused_exactly_where_it_lacks_the_permission(app, client, tenant, role):
    headers = tenant.headers(role)
    wrong = []
    for method, rule in registered_routes(app):
        expected = DESIGN_TABLE[f"{method} {_normalise(rule.rule)}"]
        if expected == PUBLIC:
            continue
        resp = client.open(_concrete(rule.rule), method=method, headers=headers, json={})
        allowed = expected == ANY or expected in ROLE_PERMISSIONS[role]
        if (allowed and resp.status_code in (401, 403)) or resp.status_code >= 500:
            wrong.append(f"{method} {rule.rule}: {resp.status_code}, expected access")
        if not allowed and resp.status_code != 403:
            wrong.append(f"{method} {rule.rule}: {resp.status_code}, expected 403")
    assert not wrong, "\n".join(wrong)


def test_public_endpoints_answer_without_credentials_and_never_500(app, client):
    for method, rule in registered_routes(app):
        if DESIGN_TABLE[f"{method} {_normalise(rule.rule)}"] != PUBLIC:
            continue
        resp = client.open(_concrete(rule.rule), method=method, json={})
        assert resp.status_code < 500, f"{method} {rule.rule}: {resp.status_code}"


def test_protected_endpoints_need_credentials(app, client):
    for method, rule in registered_routes(app):
        if DESIGN_TABLE[f"{method} {_normalise(rule.rule)}"] == PUBLIC:
            continue
        resp = client.open(_concrete(rule.rule), method=method, json={})
        assert resp.status_code == 401, f"{method} {rule.rule}: {resp.status_code}"
