"""Next best action, reply sentiment and contact-slot arithmetic: the pure functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domains.business_hours.rules import BusinessCalendar
from app.domains.intelligence import contact_time_rules, next_action_rules, score_rules, sentiment
from app.domains.intelligence.sentiment import classify

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday 10:00 in New York
WEEKDAYS = {d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}
CALENDAR = BusinessCalendar.from_settings("America/New_York", WEEKDAYS, None)


def state(**changes) -> next_action_rules.LeadState:
    base = {
        "is_open": True,
        "stage": "new_lead",
        "created_at": NOW - timedelta(days=3),
        "failed_attempts_in_a_row": 0,
        "contacts": 0,
        "breakup_sent_at": None,
        "last_contact_at": None,
        "score": 0.3,
        "has_open_task": True,
    }
    return next_action_rules.LeadState(**(base | changes))


BEST = contact_time_rules.Slot(NOW + timedelta(hours=2), NOW + timedelta(hours=3), 12, 0.55, 120)


def test_a_closed_lead_has_no_next_action():
    assert next_action_rules.next_best_action(state(is_open=False), NOW, 0.2, BEST) is None


def test_a_fresh_lead_is_called_now_whatever_the_hour():
    action = next_action_rules.next_best_action(state(created_at=NOW - timedelta(minutes=10)), NOW, 0.1, BEST)
    assert action.action == next_action_rules.CALL_NOW and action.at == NOW


def test_an_older_lead_is_called_at_the_best_slot_when_now_is_much_worse():
    action = next_action_rules.next_best_action(state(), NOW, 0.2, BEST)
    assert action.action == next_action_rules.CALL_AT_BEST_SLOT and action.at == BEST.starts_at
    assert "55%" in action.reason and "120 calls" in action.reason


def test_now_counts_as_the_best_slot_when_it_is_nearly_as_good():
    assert next_action_rules.next_best_action(state(), NOW, 0.52, BEST).action == next_action_rules.CALL_NOW


def test_three_failed_attempts_send_the_break_up_email_then_a_week_later_move_to_lost():
    three = state(failed_attempts_in_a_row=3)
    assert (
        next_action_rules.next_best_action(three, NOW, 0.2, BEST).action
        == next_action_rules.SEND_BREAKUP_EMAIL
    )
    sent = NOW - timedelta(days=8)
    later = state(failed_attempts_in_a_row=3, breakup_sent_at=sent)
    action = next_action_rules.next_best_action(later, NOW, 0.2, BEST)
    assert action.action == next_action_rules.MOVE_TO_LOST and "8 days" in action.reason
    answered = state(
        breakup_sent_at=sent, last_contact_at=NOW - timedelta(days=1), stage="contacted", contacts=1
    )
    assert (
        next_action_rules.next_best_action(answered, NOW, 0.2, BEST).action
        == next_action_rules.SCHEDULE_CONSULTATION
    )


def test_without_email_three_failed_attempts_suggest_moving_to_lost():
    action = next_action_rules.next_best_action(
        state(failed_attempts_in_a_row=3, email_allowed=False), NOW, 0.2, BEST
    )
    assert action.action == next_action_rules.MOVE_TO_LOST


def test_a_reached_lead_gets_its_consultation_scheduled():
    action = next_action_rules.next_best_action(state(stage="contacted", contacts=1), NOW, 0.2, BEST)
    assert action.action == next_action_rules.SCHEDULE_CONSULTATION


def test_an_undecided_low_score_lead_without_a_task_is_nurtured_by_a_sequence():
    undecided = state(stage="pending_decision", score=0.05, has_open_task=False, contacts=2)
    assert (
        next_action_rules.next_best_action(undecided, NOW, 0.2, BEST).action
        == next_action_rules.ENROLL_SEQUENCE
    )
    hopeful = state(stage="pending_decision", score=0.6, has_open_task=False, contacts=2)
    assert next_action_rules.next_best_action(hopeful, NOW, 0.2, BEST).action in (
        next_action_rules.CALL_NOW,
        next_action_rules.CALL_AT_BEST_SLOT,
    )


def test_the_best_upcoming_slots_are_inside_business_hours_and_distinct():
    calls, answered = [0] * contact_time_rules.HOURS_OF_WEEK, [0] * contact_time_rules.HOURS_OF_WEEK
    for hour in range(contact_time_rules.HOURS_OF_WEEK):
        calls[hour], answered[hour] = 100, 20
    calls[5 * 24 + 12], answered[5 * 24 + 12] = 100, 90  # Saturday noon: closed, must not be offered
    calls[1 * 24 + 12], answered[1 * 24 + 12] = 100, 60  # Tuesday noon
    calls[0 * 24 + 16], answered[0 * 24 + 16] = 100, 50  # Monday 16:00
    slots = contact_time_rules.best_upcoming(contact_time_rules.smooth(calls, answered), CALENDAR, NOW)
    assert [(s.hour_of_week, s.calls) for s in slots[:2]] == [(36, 100), (16, 100)]
    assert len(slots) == 3 and len({s.hour_of_week for s in slots}) == 3
    for slot in slots:
        assert contact_time_rules.is_open_at(CALENDAR, slot.starts_at) and slot.starts_at >= NOW


def test_best_within_a_window_waits_for_the_better_hour_and_keeps_the_first_without_history():
    calls, answered = [100] * contact_time_rules.HOURS_OF_WEEK, [20] * contact_time_rules.HOURS_OF_WEEK
    answered[0 * 24 + 12] = 60  # Monday noon
    best = contact_time_rules.best_within(
        contact_time_rules.smooth(calls, answered), CALENDAR, NOW, timedelta(hours=24)
    )
    assert best == datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # Monday 12:00 New York
    flat = contact_time_rules.smooth(
        [0] * contact_time_rules.HOURS_OF_WEEK, [0] * contact_time_rules.HOURS_OF_WEEK
    )
    assert contact_time_rules.best_within(flat, CALENDAR, NOW, timedelta(hours=24)) == NOW


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Thank you so much, we are excited to start!", sentiment.POSITIVE),
        ("This is way too expensive and your staff was rude.", sentiment.NEGATIVE),
        ("Not interested", sentiment.NEGATIVE),
        ("Hola, quiero una cita para mi hijo el martes por la tarde", sentiment.UNKNOWN),
        ("", sentiment.UNKNOWN),
    ],
)
def test_reply_sentiment(text, label):
    assert classify(text).label == label


def test_sentiment_of_non_english_text_is_unknown_with_its_language():
    result = classify("Merci beaucoup, nous vous rappellerons la semaine prochaine pour le rendez-vous")
    assert result.label == sentiment.UNKNOWN and result.language == "fr" and result.compound is None


def test_auc_counts_ties_as_half():
    assert score_rules.auc([0, 1], [0.5, 0.5]) == 0.5
    assert score_rules.auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
