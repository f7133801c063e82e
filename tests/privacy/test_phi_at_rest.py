"""PHI at rest (issue 34 item 6): every text or JSON column of every model is encrypted or on a
short allow-list whose reason says why it holds no health information."""

from __future__ import annotations

import sqlalchemy as sa

import app.domains  # noqa: F401 - every model into Base.metadata
from app.platform.db import Base
from app.platform.db.protected import ENCRYPTED_TYPES

IDENTIFIERS = "contact identifiers, not health details: searched, matched, sent to; erased on request"
CODE = "a value from a fixed set the code defines (a kind, status, stage, channel...)"
IDS = "ids, counts, flags and times only (tests below and app/domains/privacy/erasure.py keep it so)"
DIGEST = "a hash or keyed digest, never the value"
ERROR = "an error message of the code (exception text names rows by id, never by a person's data)"

_IDENTIFIER_COLUMNS = (
    "first_name", "last_name", "email", "phone", "phone_alt", "patient_first_name", "patient_last_name",
    "city", "state", "postal_code",
)  # fmt: skip
_IDENTIFIER_COLUMNS = (
    "first_name", "last_name", "email", "phone", "phone_alt", "patient_first_name", "patient_last_name",
    "city", "state", "postal_code",
)  # fmt: skip
ALLOWED: dict[str, str] = {
    **{f"leads.{c}": IDENTIFIERS for c in _IDENTIFIER_COLUMNS},
    "leads.preferred_time": 'when to call ("mornings"): erased on request',
    "leads.treatment_interest": "treatment kinds from the clinic's list, read by scoring in SQL",
    "leads.insurance_carrier": "the carrier's name (the member id is encrypted): erased on request",
    "leads.source_campaign": "the marketing campaign's name",
    "leads.submission_id": "the web form's idempotency key (random)",
    "leads.external_id": "the integrator's record id: erased on request",
    "leads.score_factors": "the scoring model's factor names and weights",
    "leads.next_action": "the next best action's kind and reason code",
    "leads.patient_dob_index": DIGEST,
    # A family's further patients: names as the lead's own patient's (searched; deleted on erasure).
    "lead_patients.first_name": IDENTIFIERS,
    "lead_patients.last_name": IDENTIFIERS,
    "lead_patients.relationship": CODE,
    "leads.timezone": CODE,
    "suppressions.digest": DIGEST,
    "lead_activities.details": IDS + "; the analytics read flags from it in SQL",
    "lead_tasks.origin": IDS + " (the rule or sequence that made the task)",
    "lead_tasks.series": "the recurrence's rule and ids",
    "lead_tasks.reminder_offsets_minutes": "minutes",
    "lead_tasks.dedupe_key": "a key built from ids and kinds",
    "notifications.link": "an app path with ids (/leads/3)",
    "notifications.sender": "the From a message went from: the clinic's or platform's number or address",
    "booking_form_stamps.submission_id": "a random form stamp the booking page made",
    "follow_up_passes.dedupe_key": "the pass's clinic id, local date and window",
    "follow_up_passes.local_date": "the clinic's local date of the window",
    "follow_up_passes.window": "a send window, HH:MM",
    "follow_up_passes.skipped": "skipped leads' ids, the reasons in words, task ids",
    "lead_import_mappings.columns": "a spreadsheet's column headers and their fields: no row's values",
    "unclaimed_messages.message_id": "the provider's message id (SM...)",
    "leads.next_step_blocked": CODE,
    "notifications.to_address_index": DIGEST + " (the recipient filter)",
    "notifications.template": CODE,
    "notifications.provider_message_id": "the SMS or email provider's message id",
    "notifications.dedupe_key": "a key built from ids and kinds",
    "scheduled_jobs.payload": IDS
    + "; an import's rows inside it are encrypted by app/domains/intake/imports.py",
    "scheduled_jobs.origin": IDS,
    "scheduled_jobs.trace_parent": "a W3C trace id",
    "scheduled_jobs.dedupe_key": "a key built from ids and kinds",
    "scheduled_job_keys.dedupe_key": "a key built from ids and kinds",
    "automation_steps.action": "a copy of the rule's action: templates with merge fields, not their values",
    "automation_steps.conditions": "a copy of the rule's conditions",
    "automation_steps.result": "ids, counts and reason codes of what the step did",
    "automation_steps.dedupe_key": "a key built from ids and kinds",
    "bulk_jobs.errors": "ids and error codes of rows that failed",
    "bulk_jobs.params": "the job's filter and action (ids, stages, kinds)",
    "bulk_job_rows.external_id": "the integrator's record id: erased with the lead",
    "consultations.location": "the clinic's office or room (the clinic's words, never the family's)",
    "consultations.provider_name": "the clinic's doctor seeing the family",
    "consultations.external_id": "the booking system's appointment id",
    "lead_timers.dedupe_key": "a key built from ids and kinds",
    "lead_timers.reason": "why a timer ended, in the engine's words (lead converted, cancelled by user:3)",
    "bulk_job_rows.field": "the name of the field a row failed on",
    "idempotency_keys.key": "the client's random Idempotency-Key",
    "idempotency_keys.path": "the request's path (ids only)",
    "idempotency_keys.request_hash": DIGEST,
    "idempotency_keys.response_content_type": "a media type",
    "inbound_messages.message_id": "the provider's message id (the message body is not stored)",
    "provider_deliveries.provider": CODE,
    "provider_deliveries.delivery_id": "a Twilio MessageSid or a SendGrid sg_event_id (replays refused)",
    "contact_tallies.calls": "counts per hour of the week",
    "contact_tallies.answered": "counts per hour of the week",
    "score_models.parameters": "a model's weights",
    "phi_rotation_progress.after": "a primary key",
    "phi_rotation_progress.key_fingerprint": DIGEST,
    "phi_rotation_progress.table_name": CODE,
    "events.last_error": ERROR,
    "notifications.last_error": ERROR,
    "scheduled_jobs.last_error": ERROR,
    "webhook_deliveries.last_error": ERROR,
    "heartbeats.detail": "a worker's host and process",
    "leads.sms_opt_out_source": "who asked for the opt-out, a code (sms_stop, staff, ...)",
    "leads.email_opt_out_source": "who asked for the opt-out, a code (unsubscribe, complaint, ...)",
    "leads.whatsapp_opt_out_source": "who asked for the WhatsApp opt-out, a code (sms_stop, staff, ...)",
    "consultations.booked_via": "how it was booked, a code (staff, webhook, self)",
    "conversations.contact_index": "a keyed digest of an unknown sender's number or address",
    "conversation_messages.sender_ref": "who sent it: a staff user's ref or the automation's",
    "conversation_messages.origin": "the rule or sequence step that sent it (ids and keys)",
    "conversation_messages.provider_message_id": "the provider's message id",
    "instagram_contacts.igsid": "the family's Instagram-scoped id, a contact detail (erasure deletes it)",
    "instagram_contacts.handle": "the family's Instagram username: a contact detail (erasure deletes it)",
    "message_opens.source": "where the open was seen, a code (sendgrid, pixel)",
    "sequence_enrollments.path": "the steps a lead took: step keys, outcomes, event ids and times",
}
# Tables of configuration, staff and machinery: no patient's data is written to them.
STAFF_TABLES = {
    "clinics", "users", "api_keys", "password_setup_tokens", "refresh_tokens", "calendar_feeds",
    "lead_sources", "pipeline_stages", "task_templates", "message_templates", "automation_rules",
    "automation_rule_versions", "sequences", "webhook_subscriptions", "notification_preferences",
    "assignment_cursors", "orphan_sweeps", "heartbeats", "provider_send_windows", "verified_sender_domains",
    "second_factors", "recovery_codes", "assigned_sms_senders", "signing_secrets",
    "availability_settings", "availability_providers", "availability_consultation_types",
    "availability_closures", "booking_page_settings", "instagram_accounts",
}  # fmt: skip


def _textual(column: sa.Column) -> bool:
    return isinstance(column.type, sa.String | sa.Text | sa.JSON) or "JSON" in type(column.type).__name__


def _plain_columns():
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if _textual(column) and not isinstance(column.type, ENCRYPTED_TYPES):
                yield table.name, column


def _coded(column: sa.Column) -> bool:
    """A short code column: a String of at most 64 characters named like a kind, status or stage."""
    names = ("type", "status", "kind", "channel", "direction", "outcome", "stage", "reason", "priority",
             "recurrence", "role", "category", "purpose", "sentiment", "action", "scope", "queue", "by",
             "actor", "created_by", "updated_by", "enrolled_by", "sent_by", "slug", "color", "method",
             "version", "relationship", "preferred_contact", "age_group", "content_type", "prefix",
             "hash", "jti", "family_id", "subject_id", "event_type", "suggested_action")  # fmt: skip
    short = isinstance(column.type, sa.String) and (column.type.length or 10_000) <= 64
    return short and any(column.name == n or column.name.endswith("_" + n) for n in names)


def test_every_text_column_is_encrypted_or_allowed_with_a_reason():
    unexplained = [
        f"{table}.{column.name}"
        for table, column in _plain_columns()
        if table not in STAFF_TABLES and f"{table}.{column.name}" not in ALLOWED and not _coded(column)
    ]
    assert unexplained == [], (
        f"encrypt these (app/platform/db/protected.py) or allow them with a reason: {unexplained}"
    )


def test_the_allow_list_names_only_columns_that_exist_and_are_plain():
    plain = {f"{table}.{column.name}" for table, column in _plain_columns()}
    assert set(ALLOWED) - plain == set()


def test_the_columns_that_carry_health_information_are_encrypted():
    encrypted = {
        f"{mapper.local_table.name}.{attribute.key}"
        for mapper in Base.registry.mappers
        for attribute in mapper.column_attrs
        if isinstance(attribute.columns[0].type, ENCRYPTED_TYPES)
    }
    assert {
        "leads.notes", "leads.lost_notes", "leads.patient_dob", "leads.insurance_member_id",
        "leads.address_line1", "leads.source_detail",
        "lead_activities.notes", "lead_tasks.title", "lead_tasks.description", "lead_tasks.outcome_notes",
        "notifications.to_address", "notifications.title", "notifications.body", "notifications.body_html",
        "notifications.context", "audit_events.before", "audit_events.after",
        "idempotency_keys.response_body", "events.payload", "webhook_deliveries.payload",
        "bulk_job_rows.message", "bulk_job_rows.matches",
    } <= encrypted  # fmt: skip
