"""Every operation's `operationId`: the name a generated client gives its method.

Written out, not derived: a client's `createLead()` must not turn into something else because a
view class was renamed or a path grew a segment. openapi.json pins them; tests/test_openapi_contract.py
fails on an operation missing here (printing the entry to add) and on a name used twice.
"""

from __future__ import annotations

import re

OPERATION_IDS: dict[str, str] = {
    # Operations, health and metrics.
    "GET /healthz": "getHealth",
    "GET /readyz": "getReadiness",
    "GET /metrics": "getMetrics",
    # Authentication, the caller, the clinic and its people.
    "POST /api/auth/login": "logIn",
    "POST /api/auth/logout": "logOut",
    "POST /api/auth/refresh": "refreshTokens",
    "POST /api/auth/password-setup": "setUpPassword",
    "GET /api/me": "getMe",
    "POST /api/me/password": "changeMyPassword",
    "POST /api/me/stream-token": "issueStreamToken",
    "POST /api/auth/second-factor": "startSecondFactorEnrolment",
    "POST /api/auth/second-factor/confirm": "confirmSecondFactor",
    "GET /api/me/second-factor": "getMySecondFactor",
    "POST /api/me/second-factor/disable": "disableMySecondFactor",
    "POST /api/me/second-factor/recovery-codes": "regenerateMyRecoveryCodes",
    "DELETE /api/users/{user_id}/second-factor": "resetUserSecondFactor",
    "GET /api/clinic": "getClinic",
    "PUT /api/clinic": "updateClinic",
    "GET /api/users": "listUsers",
    "POST /api/users": "createUser",
    "GET /api/users/{user_id}": "getUser",
    "PUT /api/users/{user_id}": "updateUser",
    "POST /api/users/{user_id}/invitation": "inviteUser",
    "GET /api/api-keys": "listApiKeys",
    "POST /api/api-keys": "createApiKey",
    "PUT /api/api-keys/{key_id}": "updateApiKey",
    "DELETE /api/api-keys/{key_id}": "revokeApiKey",
    "GET /api/signing-secrets": "listSigningSecrets",
    "POST /api/signing-secrets": "createSigningSecret",
    "DELETE /api/signing-secrets/{secret_id}": "revokeSigningSecret",
    "POST /api/signing-secrets/{secret_id}/rotate": "rotateSigningSecret",
    "GET /api/clinic/webhook-secret": "getClinicWebhookSecret",
    "DELETE /api/clinic/webhook-secret": "retireClinicWebhookSecret",
    "POST /api/platform/clinics": "createClinic",
    "GET /api/platform/clinics/{clinic_id}/sender-domains": "listVerifiedSenderDomains",
    "POST /api/platform/clinics/{clinic_id}/sender-domains": "verifySenderDomain",
    "GET /api/platform/clinics/{clinic_id}/sms-senders": "listAssignedSmsSenders",
    "POST /api/platform/clinics/{clinic_id}/sms-senders": "assignSmsSender",
    "DELETE /api/platform/clinics/{clinic_id}/sms-senders/{sender}": "releaseSmsSender",
    "GET /api/audit-events": "listAuditEvents",
    # Leads.
    "GET /api/leads": "listLeads",
    "POST /api/leads": "createLead",
    "GET /api/leads/{lead_id}": "getLead",
    "PUT /api/leads/{lead_id}": "updateLead",
    "GET /api/leads/export": "exportLeads",
    "POST /api/leads/import": "importLeads",
    "POST /api/capture/web-form": "captureWebForm",
    "POST /api/leads/{lead_id}/assign": "assignLead",
    "POST /api/leads/{lead_id}/stage": "moveLeadStage",
    "POST /api/leads/{lead_id}/convert": "convertLead",
    "POST /api/leads/{lead_id}/lost": "markLeadLost",
    "POST /api/leads/{lead_id}/erase": "eraseLead",
    "GET /api/leads/{lead_id}/sla": "getLeadSla",
    "GET /api/leads/{lead_id}/automation": "getLeadAutomation",
    "GET /api/leads/{lead_id}/best-contact-times": "getLeadBestContactTimes",
    "GET /api/lead-sources": "listLeadSources",
    "POST /api/lead-sources": "createLeadSource",
    "GET /api/lead-sources/{source_id}": "getLeadSource",
    "PUT /api/lead-sources/{source_id}": "updateLeadSource",
    # Activities (the timeline).
    "GET /api/activities": "listActivities",
    "GET /api/activities/{activity_id}": "getActivity",
    "GET /api/leads/{lead_id}/activities": "listLeadActivities",
    "POST /api/leads/{lead_id}/activities": "logLeadActivity",
    # Pipeline.
    "GET /api/pipeline-stages": "listPipelineStages",
    "POST /api/pipeline-stages": "createPipelineStage",
    "PUT /api/pipeline-stages/reorder": "reorderPipelineStages",
    "GET /api/pipeline-stages/{stage_id}": "getPipelineStage",
    "PUT /api/pipeline-stages/{stage_id}": "updatePipelineStage",
    # Tasks.
    "GET /api/leads/{lead_id}/tasks": "listLeadTasks",
    "POST /api/leads/{lead_id}/tasks": "createLeadTask",
    "GET /api/leads/tasks": "listTasks",
    "GET /api/leads/tasks/export": "exportTasks",
    "GET /api/leads/tasks/my-tasks": "listMyTasks",
    "GET /api/leads/tasks/overdue": "listOverdueTasks",
    "GET /api/leads/tasks/summary": "getTaskSummary",
    "GET /api/leads/tasks/{task_id}": "getTask",
    "PUT /api/leads/tasks/{task_id}": "updateTask",
    "POST /api/leads/tasks/{task_id}/complete": "completeTask",
    "POST /api/leads/tasks/{task_id}/cancel": "cancelTask",
    "POST /api/leads/tasks/{task_id}/snooze": "snoozeTask",
    "POST /api/me/next-task": "claimNextTask",
    "POST /api/me/next-task/{task_id}/renew": "renewNextTask",
    "GET /api/task-templates": "listTaskTemplates",
    "POST /api/task-templates": "createTaskTemplate",
    "GET /api/task-templates/{template_id}": "getTaskTemplate",
    "PUT /api/task-templates/{template_id}": "updateTaskTemplate",
    "DELETE /api/task-templates/{template_id}": "deactivateTaskTemplate",
    # Bulk work.
    "POST /api/leads/tasks/bulk": "createTasksInBulk",
    "POST /api/leads/tasks/bulk-actions": "actOnTasksInBulk",
    "POST /api/sequences/{sequence_id}/enrollments": "enrollLeadsInBulk",
    "GET /api/bulk-jobs": "listBulkJobs",
    "GET /api/bulk-jobs/{bulk_job_id}": "getBulkJob",
    "POST /api/bulk-jobs/{bulk_job_id}/cancel": "cancelBulkJob",
    "GET /api/bulk-jobs/{bulk_job_id}/rows": "listBulkJobRows",
    # Automation rules and the job ledger.
    "GET /api/follow-up-rules": "listRules",
    "POST /api/follow-up-rules": "createRule",
    "GET /api/follow-up-rules/active": "listActiveRules",
    "GET /api/follow-up-rules/stats": "getRuleStats",
    "GET /api/follow-up-rules/{rule_id}": "getRule",
    "PATCH /api/follow-up-rules/{rule_id}": "updateRule",
    "DELETE /api/follow-up-rules/{rule_id}": "deleteRule",
    "POST /api/follow-up-rules/{rule_id}/simulate": "simulateRule",
    "POST /api/follow-up-rules/{rule_id}/test": "testRule",
    "GET /api/follow-up-rules/{rule_id}/versions": "listRuleVersions",
    "GET /api/jobs": "listJobs",
    "GET /api/jobs/{job_id}": "getJob",
    "POST /api/jobs/{job_id}/retry": "retryJob",
    # Sequences.
    "GET /api/sequences": "listSequences",
    "POST /api/sequences": "createSequence",
    "GET /api/sequences/stats": "getSequenceStats",
    "GET /api/sequences/{sequence_id}": "getSequence",
    "PUT /api/sequences/{sequence_id}": "updateSequence",
    "GET /api/sequences/{sequence_id}/steps/{index}/variants": "listStepVariants",
    "POST /api/sequences/{sequence_id}/steps/{index}/keep-variant": "keepStepVariant",
    "GET /api/leads/{lead_id}/enrollments": "listLeadEnrollments",
    "POST /api/leads/{lead_id}/enrollments": "enrollLead",
    "POST /api/leads/{lead_id}/enrollments/{enrollment_id}/unenroll": "unenrollLead",
    # Messages to leads.
    "POST /api/leads/{lead_id}/messages": "sendLeadMessage",
    # Conversations and the team inbox (app/domains/conversations).
    "GET /api/leads/{lead_id}/conversation": "getLeadConversation",
    "POST /api/leads/{lead_id}/conversation/messages": "replyInLeadConversation",
    "POST /api/leads/{lead_id}/conversation/read": "markLeadConversationRead",
    "GET /api/conversations": "listConversations",
    "POST /api/conversations/{conversation_id}/link": "linkConversationToLead",
    "POST /api/conversations/{conversation_id}/capture": "captureConversationAsLead",
    "GET /api/message-templates": "listMessageTemplates",
    "POST /api/message-templates": "createMessageTemplate",
    "GET /api/message-templates/{template_id}": "getMessageTemplate",
    "PUT /api/message-templates/{template_id}": "updateMessageTemplate",
    "DELETE /api/message-templates/{template_id}": "deleteMessageTemplate",
    "POST /api/message-templates/{template_id}/preview": "previewMessageTemplate",
    "GET /api/unsubscribe/{token}": "showUnsubscribePage",
    "POST /api/unsubscribe/{token}": "unsubscribe",
    # Notifications (staff inbox, outgoing email and SMS).
    "GET /api/me/notifications": "listMyNotifications",
    "POST /api/me/notifications/{notification_id}/read": "markNotificationRead",
    "GET /api/me/notification-preferences": "getMyNotificationPreferences",
    "PUT /api/me/notification-preferences": "updateMyNotificationPreferences",
    "GET /api/notifications": "listNotifications",
    "POST /api/notifications/retry": "retryNotifications",
    "POST /api/notifications/{notification_id}/retry": "retryNotification",
    # The clinic's outreach pause (issue 46).
    "GET /api/clinic/outreach-pause": "getOutreachPause",
    "POST /api/clinic/outreach-pause": "pauseOutreach",
    "DELETE /api/clinic/outreach-pause": "resumeOutreach",
    # Consultations (issue 46).
    "GET /api/leads/{lead_id}/consultations": "listLeadConsultations",
    "POST /api/leads/{lead_id}/consultations": "bookConsultation",
    "GET /api/consultations": "listDayConsultations",
    "GET /api/consultations/{consultation_id}": "getConsultation",
    "PUT /api/consultations/{consultation_id}": "rescheduleConsultation",
    "POST /api/consultations/{consultation_id}/cancel": "cancelConsultation",
    "POST /api/consultations/{consultation_id}/check-in": "checkInConsultation",
    "POST /api/consultations/{consultation_id}/no-show": "markConsultationNoShow",
    "GET /api/leads/{lead_id}/recalls": "listLeadRecalls",
    "POST /api/leads/{lead_id}/recalls": "scheduleRecall",
    "GET /api/leads/{lead_id}/timers": "listLeadTimers",
    "POST /api/recalls/{recall_id}/cancel": "cancelRecall",
    "POST /api/capture/appointment": "captureAppointment",
    # Calendar feed.
    "GET /api/calendar/{token}.ics": "getCalendarFeed",
    "POST /api/me/calendar-token": "renewCalendarToken",
    # Webhooks (outbound subscriptions).
    "GET /api/webhooks": "listWebhooks",
    "POST /api/webhooks": "createWebhook",
    "DELETE /api/webhooks/{webhook_id}": "deleteWebhook",
    "GET /api/webhooks/{webhook_id}/deliveries": "listWebhookDeliveries",
    "POST /api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": "redeliverWebhookDelivery",
    # Inbound: captures and providers' callbacks.
    "POST /api/capture/call": "captureCall",
    "POST /api/capture/inbound": "captureInboundMessage",
    "POST /api/providers/sendgrid/events": "receiveSendgridEvents",
    "POST /api/providers/sendgrid/inbound/{secret}": "receiveSendgridInbound",
    "POST /api/providers/twilio/sms": "receiveTwilioSms",
    "POST /api/providers/twilio/status": "receiveTwilioStatus",
    # Analytics and intelligence.
    "GET /api/leads/analytics/coordinators": "getCoordinatorReport",
    "GET /api/leads/analytics/follow-up": "getFollowUpReport",
    "GET /api/leads/analytics/forecast": "getForecast",
    "GET /api/leads/analytics/funnel": "getFunnelReport",
    "GET /api/leads/analytics/hesitation-reasons": "getHesitationReasonsReport",
    "GET /api/leads/analytics/consultations": "getConsultationsReport",
    "GET /api/leads/analytics/lead-velocity": "getLeadVelocityReport",
    "GET /api/leads/analytics/lost-reasons": "getLostReasonsReport",
    "GET /api/leads/analytics/revenue": "getRevenueReport",
    "GET /api/leads/analytics/source-trends": "getSourceTrendsReport",
    "GET /api/leads/analytics/sources": "getSourcesReport",
    "GET /api/leads/analytics/speed-to-lead": "getSpeedToLeadReport",
    "GET /api/leads/analytics/time-to-convert": "getTimeToConvertReport",
}

_WORD = re.compile(r"[A-Za-z0-9]+")


def fallback_operation_id(method: str, path: str) -> str:
    """A name for an operation not in OPERATION_IDS yet (`postApiLeadsLeadIdNotes`): the document
    stays valid meanwhile, and the contract test names the operation to add."""
    words = [method.lower(), *_WORD.findall(path)]
    return words[0] + "".join(word[:1].upper() + word[1:] for word in words[1:])


def operation_id(method: str, path: str) -> str:
    """The operationId of `method` on the OpenAPI `path` (`/api/leads/{lead_id}`)."""
    return OPERATION_IDS.get(f"{method.upper()} {path}") or fallback_operation_id(method, path)
