"""The rule language's triggers: the events a rule may fire on, named by their types (each owning
domain's events.py), so a trigger is always an event the engine writes."""

from __future__ import annotations

from app.domains.activities.events import ActivityLogged
from app.domains.assignment.events import LeadAssigned
from app.domains.automation.events import AttemptFailed
from app.domains.consultations.events import (
    BenefitsReset,
    ConsultationAttended,
    ConsultationCancelled,
    ConsultationNoShow,
    ConsultationScheduled,
    RecallDue,
    RecordsExpiring,
)
from app.domains.engagement.events import EmailOpened, LinkClicked
from app.domains.intelligence.events import LeadScoreChanged
from app.domains.leads.events import LeadCreated, LeadUpdated
from app.domains.pipeline.events import LeadConverted, LeadLost, LeadStageChanged, LeadStale
from app.domains.tasks.events import TaskOverdue

TRIGGERS = tuple(
    event.NAME
    for event in (
        LeadCreated,
        LeadUpdated,
        LeadStageChanged,
        LeadAssigned,
        LeadConverted,
        LeadLost,
        LeadStale,
        ActivityLogged,
        AttemptFailed,  # app/domains/automation/cadence.py: an attempt failed and counts
        TaskOverdue,
        LeadScoreChanged,  # app/domains/intelligence: the lead's conversion score moved (by 0.05 or more)
        # app/domains/consultations: booked or moved (`event.rescheduled`), checked in, missed, cancelled
        ConsultationScheduled,
        ConsultationAttended,
        ConsultationNoShow,
        ConsultationCancelled,
        # app/domains/consultations/timers.py: a lead's long timers, on their day
        RecallDue,
        RecordsExpiring,
        BenefitsReset,
        EmailOpened,  # app/domains/engagement: an email's first counted open; a link's first click
        LinkClicked,
    )
)
