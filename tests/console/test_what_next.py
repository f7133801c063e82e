"""The lead page's "What happens next" (issue 76 item 2): the lead's automation trail said in sentences
(app/console/workspace/what_next.py, the words of app/console/wording.py), never an id, a code or
JSON. Every kind of step the engine runs and every result it writes has its sentence: a kind of step
or a result key the engine gains without words here fails these tests."""

from __future__ import annotations

import ast
import html as html_lib
import re
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from app.console import wording
from app.console.wording import Names, when
from app.console.workspace import what_next
from app.handlers import STEP_EXECUTORS
from tests.automation.kit import tasks_of
from tests.automation.outreachkit import (
    configure_clinic,
    email,
    enroll,
    lead_with,
    make_sequence,
    process_events,
    sms,
)
from tests.console.test_console_pages import log_in

ZONE = ZoneInfo("America/New_York")
NAMES = Names(
    zone=ZONE,
    users={7: "Maria", 8: "Ana"},
    stages={"contacted": "Contacted", "consultation_scheduled": "Consultation scheduled"},
)
KNOWN = what_next.Known(
    names=NAMES,
    owner_id=7,
    sequences={3: "Nurture"},
    enrollments={11: 3},
    tasks={41: {"id": 41, "title": "Call again: attempt 2", "assigned_to_id": 7}},
    messages={51: "Hi Rosa, we tried to reach you about your visit and would love to hear back"},
)
AT = "2024-12-03T15:00:00+00:00"  # Tue 03 Dec 2024, 10:00 in New York
SAID_AT = "Tue 03 Dec 2024, 10:00 EST"
DONE_AT = "2024-12-02T14:30:00+00:00"
SAID_DONE_AT = "Mon 02 Dec 2024, 09:30 EST"
# What a person must never read: a snake_case code, JSON's brackets, an ISO time, Python's None, an
# enum's member.
NOT_WORDS = re.compile(r"\b[a-z]+_[a-z0-9_]+\b|[{}\[\]]|\d{4}-\d{2}-\d{2}|\bNone\b|\b[A-Z]+_[A-Z_]+\b")


def says_words(text: str) -> str:
    assert not NOT_WORDS.search(text), text  # an action type's name too: create_task, send_sms...
    return text


def step(status: str, kind: str, action: dict | None = None, result: dict | None = None, **more) -> dict:
    """A step as the why-trail's answer has it (StepOut)."""
    return {
        "action_type": kind,
        "status": status,
        "run_at": AT,
        "finished_at": DONE_AT if status != "scheduled" else None,
        "rule": None,
        "sequence": None,
        "event": None,
        "sweep": None,
        "action": {"type": kind, **(action or {})},
        "result": result or {},
        "reason": (result or {}).get("reason"),
        **more,
    }


# --- every kind of step, every status ---------------------------------------------------------------


def test_every_kind_of_step_the_engine_runs_has_its_words():
    kinds = set(STEP_EXECUTORS)
    assert kinds <= set(wording.PLANNED), kinds - set(wording.PLANNED)
    assert kinds <= set(wording.STEP_THINGS), kinds - set(wording.STEP_THINGS)


@pytest.mark.parametrize("kind", sorted(STEP_EXECUTORS))
@pytest.mark.parametrize("status", ["scheduled", "done", "skipped", "cancelled", "failed"])
def test_each_kind_of_step_reads_as_a_sentence_whatever_its_status(kind, status):
    action = {"sequence_id": 3, "channel": "sms", "for": ["replied"]}
    text = says_words(
        what_next.step_sentence(step(status, kind, action, {"reason": "the lead replied"}), KNOWN)
    )
    assert "automated step" not in text  # the words for a kind the table does not know
    if status in ("scheduled", "done"):
        assert SAID_AT in text or SAID_DONE_AT in text, text
    else:
        assert "the family replied" in text and SAID_AT in text, text


# --- every result the engine writes -----------------------------------------------------------------

# Each result shape the engine writes, with what its sentence says (`step` fills the rest). Together
# they hold every result key the engine's source writes (test_the_examples_hold_every_result_key).
SHAPES = [
    (
        step("done", "create_task", {"task_type": "CALL", "cadence": 2}, {"task_id": 41, "due_at": AT}),
        f"Made a call task “Call again: attempt 2” for Maria on {SAID_DONE_AT}, due {SAID_AT} — "
        "the cadence's attempt 2.",
    ),
    (
        step(
            "done",
            "recurring_follow_up",
            {"task_type": "FOLLOW_UP"},
            {"task_id": 99, "due_at": AT, "occurrence": 2, "of": 4, "next_step_id": 5, "next_at": AT},
        ),
        f"Made a follow up task for Maria on {SAID_DONE_AT}, due {SAID_AT}; follow-up 2 of 4; the next one "
        f"is due {SAID_AT}.",
    ),
    (
        step("scheduled", "recurring_follow_up", {"task_type": "CALL"}, {"previous_step_id": 4}),
        f"A call task for Maria is due on {SAID_AT}.",
    ),
    (
        step("done", "notify", {"lead_owner": True}, {"notification_ids": [1, 2], "user_ids": [7, 8]}),
        f"Told Maria and Ana on {SAID_DONE_AT}.",
    ),
    (
        step("done", "assign", {}, {"from_user_id": 8, "to_user_id": 7}),
        f"Gave the lead to Maria (it was Ana's) on {SAID_DONE_AT}.",
    ),
    (
        step(
            "done",
            "suggest",
            {"suggestion": "mark_lost"},
            {"suggested_action": "mark_lost", "withdrawn": {"at": AT, "why": "engagement: the lead replied"}},
        ),
        f"Suggested: mark the lead lost on {SAID_DONE_AT}; withdrawn on {SAID_AT}: the family replied.",
    ),
    (
        step(
            "done",
            "set_priority",
            {"priority": "urgent"},
            {"from_priority": "normal", "to_priority": "urgent"},
        ),
        f"Changed the priority from normal to urgent on {SAID_DONE_AT}.",
    ),
    (
        step("done", "update_stage", {"stage": "contacted"}, {"from_stage": "new", "to_stage": "contacted"}),
        f"Moved to Contacted on {SAID_DONE_AT}.",
    ),
    (
        step("done", "send_sms", {"cadence": 2}, {"notification_id": 51, "channel": "sms"}),
        f"Sent the text “Hi Rosa, we tried to reach you about…” on {SAID_DONE_AT} — the cadence's attempt 2.",
    ),
    (
        step(
            "done",
            "send_email",
            {"break_up": True},
            {"notification_id": 52, "channel": "sms", "fallback": "sent by sms: the lead opted out of email"},
        ),
        f"Sent a text on {SAID_DONE_AT}; as a text instead: the family opted out of emails — the break-up "
        "message after the failed attempts.",
    ),
    (
        step(
            "done",
            "send_email",
            {},
            {
                "notification_id": 53,
                "channel": "email",
                "fallback": "sent by sms after the email bounced",
                "fallback_channel": "sms",
                "fallback_notification_id": 54,
            },
        ),
        f"Sent an email on {SAID_DONE_AT}; the email bounced, so it went again as a text.",
    ),
    (
        step(
            "failed",
            "send_email",
            {},
            {
                "notification_id": 53,
                "channel": "email",
                "reason": "the email bounced; not sent by sms either: the lead opted out of sms",
                "fallback": "not sent by sms: the lead opted out of sms",
                "fallback_channel": "sms",
            },
        ),
        f"Failed: the email bounced; nor by text: the family opted out of texts — an email due {SAID_AT}.",
    ),
    (
        step(
            "scheduled",
            "send_sms",
            {},
            {"moved": [{"from": AT, "to": AT, "why": "quiet hours 20:00-08:00 (America/New_York)"}]},
        ),
        f"A text to the family goes on {SAID_AT} — held from {SAID_AT}: quiet hours 20:00-08:00 "
        "(America/New_York).",
    ),
    (
        step("done", "enroll_sequence", {"sequence_id": 3}, {"enrollment_id": 11}),
        f"Started the sequence “Nurture” on {SAID_DONE_AT}.",
    ),
    (
        step(
            "done",
            "sequence_wait",
            {"sequence_id": 3, "for": ["replied"]},
            {"outcome": "replied", "event_id": 77},
            sequence={"enrollment_id": 11, "step": 0},
        ),
        f"In the sequence “Nurture”, the family replied: it went on from there on {SAID_DONE_AT}.",
    ),
    (
        step(
            "skipped",
            "sequence_step",
            {"sequence_id": 3, "channel": "sms"},
            {"reason": "do not contact", "held_back_by": "contact policy"},
            sequence={"enrollment_id": 11, "step": 1},
        ),
        f"Held back by the contact policy: do not contact — a text due {SAID_AT} (step 2 of the sequence "
        "“Nurture”).",
    ),
    (
        step(
            "cancelled",
            "create_task",
            {"task_type": "CALL", "cadence": 2},
            {"reason": "engagement: the family was in touch"},
        ),
        f"Cancelled: the family was in touch — a call task planned for {SAID_AT} (the cadence's attempt 2).",
    ),
    (
        step(
            "scheduled",
            "create_task",
            {"task_type": "CALL", "cadence": 2},
            {"reason": "1 failed attempt(s) in a row: the cadence's attempt 2, 1 business day(s) later"},
        ),
        f"A call task for Maria is due on {SAID_AT} — the cadence's attempt 2.",
    ),
    (
        step(
            "scheduled",
            "create_task",
            {"task_type": "FOLLOW_UP", "sweep": "automation.find_orphan_leads"},
            {"reason": f"no next step since {AT}: found by automation.find_orphan_leads"},
            sweep="automation.find_orphan_leads",
            rule={"id": 9, "version": 3, "name": "Speed to lead"},
        ),
        f"A follow up task for Maria is due on {SAID_AT} — the lead had no next step; your rule "
        "“Speed to lead”.",
    ),
]


def _engine_result_keys() -> dict[str, str]:
    """Every key the engine's source writes into a step's result, with the file that writes it: the
    keyword arguments of `steps.finish(...)`, and the keys of a dict given as a step's `result`."""
    keys: dict[str, str] = {}
    root = Path(__file__).resolve().parents[2]
    for path in sorted((root / "app").rglob("*.py")):
        if (root / "app" / "console") in path.parents:
            continue  # the wording's own code
        for node in ast.walk(ast.parse(path.read_text())):
            dicts = []
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", getattr(node.func, "id", "")) == "finish"
            ):
                keys |= {
                    kw.arg: str(path.relative_to(root))
                    for kw in node.keywords
                    if kw.arg and kw.arg not in keys
                }
            if isinstance(node, ast.Assign) and any(getattr(t, "attr", "") == "result" for t in node.targets):
                dicts.append(node.value)
            if isinstance(node, ast.keyword) and node.arg == "result":
                dicts.append(node.value)
            for found in dicts:
                if isinstance(found, ast.Dict):
                    said = [k.value for k in found.keys if isinstance(k, ast.Constant)]
                    keys |= {key: str(path.relative_to(root)) for key in said if key not in keys}
    return keys


def test_every_result_the_engine_writes_is_said():
    written = _engine_result_keys()
    assert {"task_id", "due_at", "moved", "withdrawn", "reason", "fallback_channel"} <= set(written)
    unsaid = {key: path for key, path in written.items() if key not in what_next.SAID}
    assert unsaid == {}, f"give these results their words in what_next.py and wording.py: {unsaid}"


def test_the_examples_hold_every_result_key():
    shown = {key for example, _ in SHAPES for key in example["result"]}
    assert set(_engine_result_keys()) <= shown, set(_engine_result_keys()) - shown


@pytest.mark.parametrize(("example", "said"), SHAPES)
def test_each_result_shape_reads_as_its_sentence(example, said):
    assert says_words(what_next.step_sentence(example, KNOWN)) == said


# --- the engine's reasons ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("the lead replied", "the family replied"),
        ("unenrolled: replied", "the family replied"),
        ("unenrolled: exit_conditions", "the lead met the sequence's exit conditions"),
        (
            "engagement: the lead moved forward to consultation_scheduled",
            "the lead moved forward to Consultation scheduled",
        ),
        ("the lead has moved on to contacted", "the lead has moved on to Contacted"),
        (
            "the lead left contacted for consultation_scheduled: the recurring follow-up ends",
            "the lead left Contacted for Consultation scheduled: the recurring follow-up ends",
        ),
        ("rule 12 was deleted", "its rule was deleted"),
        ("no executor for 'send_fax'", "the engine cannot do this kind of step"),
        ("the lead is already urgent", "the lead's priority is already urgent"),
        ("merged", "the lead was merged into another"),
        ("erased", "the family's details were erased"),
        (
            f"the clinic's outreach is paused until {AT}, after the consultation starts",
            f"the clinic's outreach is paused until {SAID_AT}, after the consultation starts",
        ),
        ("the lead opted out of sms", "the family opted out of texts"),
        (
            "the lead opted out of email; not by sms either: the lead has no phone number",
            "the family opted out of emails; nor by text: the lead has no phone number",
        ),
        ("lead 12 is already enrolled in sequence 3", "the lead is already enrolled in the sequence"),
        ("stage change refused: lead 12 is already lost", "the move was refused: the lead is already lost"),
        ("no message template 4 in this clinic", "its message template was deleted"),
        (
            "outside WhatsApp's 24-hour window and no approved template (content_sid) given: the family has "
            "not written on WhatsApp",
            "outside WhatsApp's 24-hour window, and no approved template was chosen: the family has not "
            "written on WhatsApp",
        ),
        ("the task text cannot be rendered: unexpected '}'", "the task's text could not be filled in"),
        (None, ""),
    ],
)
def test_the_engines_reasons_read_as_words(reason, said):
    assert says_words(what_next.reason_words(reason, NAMES)) == said


def test_attempts_and_sequences_read_as_sentences():
    trail = {
        "failed_attempts": 2,
        "attempts": [
            {"type": "PHONE_CALL", "made_at": AT, "failed_at": AT, "counted": True},
            {"type": "SMS", "made_at": DONE_AT, "failed_at": AT, "counted": False},
        ],
        "enrollments": [
            {"sequence_id": 3, "status": "active", "enrolled_at": DONE_AT, "next_step_at": AT},
            {"sequence_id": 3, "status": "unenrolled", "ended_at": AT, "end_reason": "consultation_booked"},
            {"sequence_id": 99, "status": "completed", "ended_at": AT, "end_reason": "completed"},
        ],
    }
    shown = what_next.panel(trail, KNOWN, every_step=False)
    assert shown["attempts"] == [
        "2 failed attempts in a row since the last contact.",
        f"The text sent on {SAID_DONE_AT} counts as a failed attempt if there is no answer by {SAID_AT}.",
    ]
    assert shown["sequences"] == [
        f"In the sequence “Nurture” since {SAID_DONE_AT}; its next step is due {SAID_AT}.",
        f"Left the sequence “Nurture” on {SAID_AT}: the family booked a consultation.",
        f"Finished the sequence “a sequence no longer there” on {SAID_AT}.",
    ]
    assert shown["every_step"] is None  # only for a clinic admin
    assert what_next.panel({"failed_attempts": 0}, KNOWN, every_step=True)["attempts"] == [
        "No failed attempts since the last contact."
    ]


# --- the page ---------------------------------------------------------------------------------------


class _Text(HTMLParser):
    """A page's text as a person reads it (no tags, attributes, scripts or styles)."""

    def __init__(self):
        super().__init__()
        self.parts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def page_text(html: str) -> str:
    reader = _Text()
    reader.feed(html)
    return " ".join(" ".join(reader.parts).split())


class _Lines(HTMLParser):
    """The sentences of one of the panel's lists: each item's own text, without what its rule checked
    (the item's <details>)."""

    def __init__(self, list_id: str):
        super().__init__()
        self.list_id, self.lines, self._depth, self._details = list_id, None, 0, 0

    def handle_starttag(self, tag, attrs):
        if tag == "ul" and dict(attrs).get("id") == self.list_id:
            self.lines, self._depth = [], 1
        elif self._depth and tag == "ul":
            self._depth += 1
        elif self._depth == 1 and tag == "li" and not self._details:
            self.lines.append("")
        self._details += self._depth > 0 and tag == "details"

    def handle_endtag(self, tag):
        self._details -= self._depth > 0 and tag == "details"
        if self._depth and tag == "ul":
            self._depth -= 1

    def handle_data(self, data):
        if self._depth and not self._details and self.lines:
            self.lines[-1] = " ".join(f"{self.lines[-1]} {data}".split())


def lines_of(html: str, list_id: str) -> list[str]:
    reader = _Lines(list_id)
    reader.feed(html)
    assert reader.lines is not None, list_id
    return reader.lines


def lead_page(app, tenant, lead_id: int, role: str) -> str:
    with app.test_client() as console:
        log_in(console, tenant, role)
        page = console.get(f"/console/leads/{lead_id}")
        assert page.status_code == 200
        return page.get_data(as_text=True)


def says_no_identifier(html: str) -> None:
    text = page_text(html)
    codes = [kind for kind in STEP_EXECUTORS if "_" in kind]  # "notify", "assign" are words too
    for never in ('{"', "{'", "task_id", "due_at", "rule_id", "notification_id", *codes):
        assert never not in text, (never, text[max(0, text.find(never) - 200) : text.find(never) + 200])


def test_the_lead_page_says_what_happens_next_in_sentences(app, db, client, tenant):
    configure_clinic(client, tenant)  # open all day: the cadence's next business day is tomorrow
    zone = ZoneInfo(client.get("/api/clinic", headers=tenant.headers()).get_json()["timezone"])
    lead = lead_with(client, tenant, first_name="Rosa", phone="(415) 555-0134")
    nurture = make_sequence(client, tenant, [sms("Hi {{ first_name }}, any questions?"), email(2, "days")])
    enroll(client, tenant, lead["id"], nurture["id"])
    process_events(app, db)  # the default rules: the initial call task
    [initial] = tasks_of(app, lead["id"])
    unanswered = client.post(
        f"/api/leads/tasks/{initial.id}/complete",
        json={"outcome": "no_answer"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert unanswered.status_code == 200, unanswered.get_json()
    process_events(app, db)  # a failed attempt: the cadence plans its attempt 2
    trail = client.get(f"/api/leads/{lead['id']}/automation", headers=tenant.headers()).get_json()
    owner = next(u.name for u in tenant.users.values() if u.id == lead["assigned_to_id"])
    names = Names(zone=zone)
    [call] = [s for s in trail["pending"] if s["action_type"] == "create_task"]
    [text] = [s for s in trail["pending"] if s["action_type"] == "send_sms"]
    [later] = [s for s in trail["pending"] if s["action_type"] == "sequence_step"]

    html = lead_page(app, tenant, lead["id"], "treatment_coordinator")
    assert lines_of(html, "next-planned") == [  # soonest first
        f"A call task for {owner} is due on {when(call['run_at'], names)} — the cadence's attempt 2.",
        f"A text to the family goes on {when(text['run_at'], names)} — the cadence's attempt 2.",
        f"An email to the family goes on {when(later['run_at'], names)} — step 2 of the sequence “Nurture”.",
    ]
    done = " ".join(lines_of(html, "next-done"))
    assert f"Made a call task “Initial contact” for {owner}" in done
    assert (
        "Sent the text “Hi Rosa, any questions?” on " in done and "step 1 of the sequence “Nurture”" in done
    )
    assert lines_of(html, "next-attempts") == ["1 failed attempt since the last contact."]
    assert lines_of(html, "next-sequences")[0].startswith("In the sequence “Nurture” since ")
    assert 'id="full-trail"' not in html  # the whole trail is the admins'
    says_no_identifier(html)

    front_desk = lead_page(app, tenant, lead["id"], "front_desk")
    assert "Sent a text on " in " ".join(lines_of(front_desk, "next-done"))  # no message text without PHI
    assert "any questions?" not in front_desk
    says_no_identifier(front_desk)

    replied = client.post(
        f"/api/leads/{lead['id']}/activities",
        json={"type": "SMS", "direction": "INBOUND", "notes": "Yes, please call me"},
        headers=tenant.headers("treatment_coordinator"),
    )
    assert replied.status_code == 201, replied.get_json()
    process_events(app, db)  # the family replied: the cadence and the sequence stop
    html = lead_page(app, tenant, lead["id"], "clinic_admin")
    assert lines_of(html, "next-planned") == ["Nothing automated is planned for this lead."]
    stopped = lines_of(html, "next-stopped")
    assert (
        f"Cancelled: the family replied — an email planned for {when(later['run_at'], names)} (step 2 of the "
        "sequence “Nurture”)."
    ) in stopped
    assert (
        f"Cancelled: the family was in touch — a call task planned for {when(call['run_at'], names)} (the "
        "cadence's attempt 2)."
    ) in stopped
    assert lines_of(html, "next-attempts") == ["No failed attempts since the last contact."]
    assert lines_of(html, "next-sequences")[0].startswith("Left the sequence “Nurture” on ")
    assert lines_of(html, "next-sequences")[0].endswith(": the family replied.")
    every = lines_of(html, "every-step")  # the admin's whole trail, a sentence a step
    assert len(every) == len(trail["pending"]) + len(trail["past"]) and all(
        line.endswith(".") for line in every
    )
    assert html_lib.unescape("your rule “Speed to lead") in " ".join(every)
    says_no_identifier(html)
