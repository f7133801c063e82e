"""The schedule of consultations (/console/schedule), as the front desk uses it: a day and a week in
the clinic's timezone, one provider or all, cancelled ones kept out of the way; a consultation moved
(a taken time or a bad date said beside its field, nothing changed) and cancelled after a
confirmation; one booked for a family found by name; a role that may not change consultations sees
no buttons and is refused; another clinic's consultation is not found.

Every date is built from the clinic's own today (New York), a few days ahead on a Wednesday, so the
tests mean the same at any hour they run."""

from __future__ import annotations

import html as html_lib
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.platform import clock
from app.platform.roles import ROLE_PERMISSIONS, Permission, Role
from tests.availability import kit
from tests.console.test_console_pages import csrf_of
from tests.console.test_console_pages import log_in as console_log_in
from tests.leadkit import create_lead

EVERY_DAY = {day: ["07:00", "23:59"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
WEDNESDAY = 2
DASH = "\u2013"  # between a visit's start and end


def _label(day: date) -> str:
    return day.strftime("%A %-d %B %Y")


@pytest.fixture
def clinic(client, tenant):
    """A New York clinic with two providers seeing patients every day, one consultation type, and a
    Wednesday at least three local days ahead (its week, Monday to Sunday, all ahead as well)."""
    kit.set_clinic_zone(client, tenant)
    lee = kit.provider(client, tenant, "Dr. Lee", hours=EVERY_DAY)
    kim = kit.provider(client, tenant, "Dr. Kim", hours=EVERY_DAY)
    kind = kit.consultation_type(client, tenant, [lee["id"], kim["id"]], name="New patient exam")
    day = kit.next_weekday(WEDNESDAY, at_least_days=3)
    return {"lee": lee, "kim": kim, "type": kind, "day": day}


def _book(client, tenant, lead_id: int, starts, provider_id: int, type_id: int) -> dict:
    resp = client.post(
        f"/api/leads/{lead_id}/consultations",
        json={"starts_at": starts.isoformat(), "provider_id": provider_id, "type_id": type_id},
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


@pytest.fixture
def booked(client, tenant, clinic):
    """Rosa at 09:00 with Dr. Lee, Omar at 23:30 with Dr. Kim (04:30 the next day in UTC) on the
    Wednesday; Lena on the Thursday at 09:00 with Dr. Lee; Noor the Wednesday after."""
    day, kind = clinic["day"], clinic["type"]["id"]
    made = {}
    for name, (on, hhmm, who) in {
        "Rosa": (day, "09:00", "lee"),
        "Omar": (day, "23:30", "kim"),
        "Lena": (day + timedelta(days=1), "09:00", "lee"),
        "Noor": (day + timedelta(days=7), "09:00", "lee"),
    }.items():
        lead = create_lead(client, tenant, first_name=name, last_name="Family", phone=None)
        made[name] = _book(client, tenant, lead["id"], kit.at(on, hhmm), clinic[who]["id"], kind)
    return made


def _page(console, path: str, status: int = 200) -> str:
    resp = console.get(path)
    assert resp.status_code == status, resp.get_data(as_text=True)[:2000]
    return resp.get_data(as_text=True)


def _row(html: str, consultation_id: int) -> str:
    found = re.search(rf'<tr data-consultation="{consultation_id}".*?</tr>', html, re.S)
    return found.group(0) if found else ""


def _api(client, tenant, consultation_id: int) -> dict:
    resp = client.get(f"/api/consultations/{consultation_id}", headers=tenant.headers())
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def _post(console, path: str, form_page: str, **form):
    token = csrf_of(_page(console, form_page))
    return console.post(path, data={"csrf_token": token, **form})


def test_a_day_lists_its_consultations_in_the_clinics_timezone(app, client, tenant, clinic, booked):
    day = clinic["day"]
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, f"/console/schedule?day={day.isoformat()}")
        rosa, omar = _row(html, booked["Rosa"]["id"]), _row(html, booked["Omar"]["id"])
        assert f"09:00{DASH}10:00" in rosa and "Rosa Family" in rosa and "Dr. Lee" in rosa
        assert "New patient exam" in rosa and "Scheduled" in rosa
        assert f'href="/console/leads/{booked["Rosa"]["lead_id"]}"' in rosa
        # 23:30 in New York is the next day in UTC: still this day's, at its local time.
        assert "23:30" in omar and "Dr. Kim" in omar
        assert "Lena Family" not in html and "Noor Family" not in html
        assert _label(day) in html
        assert "scheduled" not in re.sub(r"<[^>]+>", " ", rosa).split()  # words, never the code

        next_day = _page(console, f"/console/schedule?day={(day + timedelta(days=1)).isoformat()}")
        assert "Lena Family" in next_day and "Rosa Family" not in next_day


def test_the_schedule_opens_on_the_clinics_today_and_an_empty_day_says_so(app, tenant, clinic):
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, "/console/schedule")
        today = clock.now().astimezone(ZoneInfo(kit.ZONE)).date()
        assert f'value="{today.isoformat()}"' in html
        assert f"No consultations on {_label(today)}." in html


def test_the_week_shows_seven_days_from_monday_and_the_steps_move_by_a_week(app, tenant, clinic, booked):
    day = clinic["day"]
    monday = day - timedelta(days=day.weekday())
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, f"/console/schedule?day={day.isoformat()}&view=week")
        headings = re.findall(r'<h2 id="day-(\d{4}-\d\d-\d\d)-h">', html)
        assert headings == [(monday + timedelta(days=n)).isoformat() for n in range(7)]
        for name in ("Rosa", "Omar", "Lena"):
            assert f"{name} Family" in html
        assert "Noor Family" not in html
        assert f"No consultations on {_label(monday)}." in html
        later = (day + timedelta(days=7)).isoformat()
        assert f'href="/console/schedule?day={later}&amp;view=week" id="schedule-next"' in html
        assert "Noor Family" in _page(console, f"/console/schedule?day={later}&view=week")


def test_one_providers_schedule_leaves_out_the_others(app, tenant, clinic, booked):
    day = clinic["day"].isoformat()
    lee, kim = clinic["lee"]["id"], clinic["kim"]["id"]
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, f"/console/schedule?day={day}&provider={lee}")
        assert "Rosa Family" in html and "Omar Family" not in html
        assert f'<option value="{lee}" selected>Dr. Lee</option>' in html
        thursday = (clinic["day"] + timedelta(days=1)).isoformat()
        html = _page(console, f"/console/schedule?day={thursday}&provider={kim}")
        assert f"No consultations with Dr. Kim on {_label(clinic['day'] + timedelta(days=1))}." in html


def test_cancelled_consultations_are_kept_out_of_the_way_until_asked_for(app, client, tenant, clinic, booked):
    omar = booked["Omar"]["id"]
    resp = client.post(f"/api/consultations/{omar}/cancel", headers=tenant.headers("front_desk"))
    assert resp.status_code == 200, resp.get_json()
    day = clinic["day"].isoformat()
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, f"/console/schedule?day={day}")
        assert "Omar Family" not in html and "1 cancelled consultation not shown." in html
        html = _page(console, f"/console/schedule?day={day}&cancelled=1")
        row = _row(html, omar)
        assert "Cancelled" in row and 'class="status-cancelled"' in row
        assert "Move" not in row  # a cancelled one is not moved


def test_a_consultation_is_moved_to_a_date_and_time_typed_in_the_clinics_zone(
    app, client, tenant, clinic, booked
):
    rosa = booked["Rosa"]["id"]
    friday = clinic["day"] + timedelta(days=2)
    form_page = f"/console/schedule/consultations/{rosa}/move"
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        moved = _post(console, f"{form_page}?view=week", form_page, date=friday.isoformat(), time="11:15")
        assert moved.status_code == 303
        assert moved.headers["Location"].endswith(f"/console/schedule?day={friday.isoformat()}&view=week")
        html = _page(console, moved.headers["Location"])
        assert f"Rosa Family's consultation moved to {_label(friday)}, 11:15." in html_lib.unescape(html)
        assert f"11:15{DASH}12:15" in _row(html, rosa)
    assert _api(client, tenant, rosa)["starts_at"] == kit.at(friday, "11:15").isoformat()


def test_a_move_onto_a_taken_time_or_a_bad_date_is_said_beside_its_field_and_changes_nothing(
    app, client, tenant, clinic, booked
):
    rosa, lena = booked["Rosa"], booked["Lena"]
    thursday = clinic["day"] + timedelta(days=1)
    form_page = f"/console/schedule/consultations/{rosa['id']}/move"
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        taken = _post(console, form_page, form_page, date=thursday.isoformat(), time="09:30")
        html = taken.get_data(as_text=True)
        assert taken.status_code == 422, html[:2000]
        error = re.search(r'<span class="error field-error" id="err-time">([^<]*)</span>', html)
        assert error and "Dr. Lee is booked from 09:00 to 10:00 that day" in error.group(1)
        assert "Free nearby:" in error.group(1)
        assert f'value="{thursday.isoformat()}"' in html and 'value="09:30"' in html  # still typed

        far = _post(console, form_page, form_page, date="9999-12-31", time="23:30")
        assert far.status_code == 422 and "Enter the new date as year-month-day" in far.get_data(as_text=True)
        bad = _post(console, form_page, form_page, date="31/02/2030", time="25:00")
        html = bad.get_data(as_text=True)
        assert bad.status_code == 422
        assert "Enter the new date as year-month-day" in html and "Enter the new time as hours" in html
        assert 'id="move-date" name="date" type="date" value="31/02/2030" aria-invalid="true"' in html
    assert _api(client, tenant, rosa["id"])["starts_at"] == rosa["starts_at"]
    assert _api(client, tenant, lena["id"])["starts_at"] == lena["starts_at"]


def test_a_consultation_is_cancelled_after_a_confirmation_and_only_once(app, client, tenant, clinic, booked):
    rosa = booked["Rosa"]["id"]
    path = f"/console/schedule/consultations/{rosa}/cancel"
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        confirm = _page(console, path)
        assert "Cancel Rosa Family's consultation?" in html_lib.unescape(confirm)
        assert _api(client, tenant, rosa)["status"] == "scheduled"  # opening the step changes nothing
        done = _post(console, path, path)
        assert done.status_code == 303
        html = _page(console, done.headers["Location"])
        said = f"Rosa Family's consultation on {_label(clinic['day'])}, 09:00 is cancelled"
        assert said in html_lib.unescape(html)
        assert _api(client, tenant, rosa)["status"] == "cancelled"

        again = console.post(path, data={"csrf_token": csrf_of(html)})
        assert again.status_code == 409
        assert "only a scheduled consultation can be cancelled" in again.get_data(as_text=True)


def test_a_consultation_is_booked_for_a_family_found_by_name_on_the_day_chosen(app, client, tenant, clinic):
    lead = create_lead(client, tenant, first_name="Ines", last_name="Castro", phone=None)
    day = clinic["day"].isoformat()
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        schedule = _page(console, f"/console/schedule?day={day}")
        assert f'href="/console/schedule/book?day={day}"' in schedule
        found = _page(console, f"/console/schedule/book?day={day}&q=Castro")
        assert f'href="/console/schedule/book?day={day}&amp;lead={lead["id"]}">Ines Castro</a>' in found
        chosen_page = f"/console/schedule/book?day={day}&lead={lead['id']}"
        chosen = _page(console, chosen_page)
        assert "For Ines Castro" in chosen and ">09:00</option>" in chosen

        nothing = _post(console, "/console/schedule/book", chosen_page, date=day, lead=str(lead["id"]))
        assert nothing.status_code == 422
        assert "Choose a free time, or type a time." in nothing.get_data(as_text=True)

        slot = re.search(r'<option value="([^"]+)">09:00</option>', chosen).group(1)
        form = {"date": day, "lead": str(lead["id"]), "type_id": str(clinic["type"]["id"]), "slot": slot}
        done = _post(console, "/console/schedule/book", chosen_page, **form)
        assert done.status_code == 303 and done.headers["Location"].endswith(f"/console/schedule?day={day}")
        html = _page(console, done.headers["Location"])
        assert f"Consultation booked for Ines Castro on {_label(clinic['day'])}, 09:00." in html
    listed = client.get(f"/api/leads/{lead['id']}/consultations", headers=tenant.headers()).get_json()
    assert [c["starts_at"] for c in listed] == [kit.at(clinic["day"], "09:00").isoformat()]


def test_a_role_that_may_not_change_consultations_sees_no_buttons_and_is_refused(
    app, client, tenant, clinic, booked, monkeypatch
):
    # No role of the product reads consultations without booking them; one that only reads is made
    # for the test (the console reads a role's permissions on every request).
    monkeypatch.setitem(ROLE_PERMISSIONS, Role.FRONT_DESK, frozenset({Permission.READ}))
    rosa = booked["Rosa"]["id"]
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, f"/console/schedule?day={clinic['day'].isoformat()}")
        assert "Rosa Family" in html
        assert "/move" not in html and "/cancel" not in html and "Book a consultation" not in html
        token = csrf_of(html)
        assert "check-in" not in html and "no-show" not in html
        paths = ("move", "cancel", "check-in", "no-show")
        for path in (*(f"consultations/{rosa}/{action}" for action in paths), "book"):
            refused = console.post(f"/console/schedule/{path}", data={"csrf_token": token})
            assert refused.status_code == 403, path
        assert console.get(f"/console/schedule/consultations/{rosa}/cancel").status_code == 403
    assert _api(client, tenant, rosa)["status"] == "scheduled"
    with app.test_client() as console:  # the doctors read no leads: no schedule either
        console_log_in(console, tenant, "doctor")
        assert console.get("/console/schedule").status_code == 403


def test_another_clinics_consultation_is_not_found(app, client, tenant, make_tenant, clinic, booked):
    other = make_tenant("Other Smiles")
    lead = create_lead(client, other, first_name="Theirs", last_name="Family", phone=None)
    theirs = client.post(
        f"/api/leads/{lead['id']}/consultations",
        json={"starts_at": kit.at(clinic["day"], "10:00").isoformat()},
        headers=other.headers("front_desk"),
    ).get_json()
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        assert console.get(f"/console/schedule/consultations/{theirs['id']}/move").status_code == 404
        token = csrf_of(_page(console, "/console/schedule"))
        for action in ("move", "cancel", "check-in", "no-show"):
            resp = console.post(
                f"/console/schedule/consultations/{theirs['id']}/{action}",
                data={"csrf_token": token, "date": clinic["day"].isoformat(), "time": "11:00"},
            )
            assert resp.status_code == 404, action
        assert console.get(f"/console/schedule/book?lead={lead['id']}").status_code == 404
        assert "Theirs Family" not in _page(console, f"/console/schedule?day={clinic['day'].isoformat()}")
    assert _api(client, other, theirs["id"])["status"] == "scheduled"


def test_a_started_consultation_is_checked_in_and_another_marked_a_no_show_from_the_schedule(
    app, client, tenant, clinic
):
    """Booked for now (outside the slots, as the desk does for a walk-in) and on the coming Wednesday."""
    now_visit = _book_at(client, tenant, "Rosa", clock.now())
    later = _book_at(client, tenant, "Omar", kit.at(clinic["day"], "09:00"))
    today = clock.now().astimezone(ZoneInfo(kit.ZONE)).date()
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        week = f"/console/schedule?day={today.isoformat()}&view=week"
        row = _row(_page(console, week), now_visit["id"])
        assert ">Checked in<" in row and ">No-show<" in row
        done = _post(console, f"/console/schedule/consultations/{now_visit['id']}/check-in?view=week", week)
        assert done.status_code == 303
        assert done.headers["Location"].endswith(f"/console/schedule?day={today.isoformat()}&view=week")
        html = _page(console, done.headers["Location"])
        assert f"Rosa Family checked in for the consultation on {_label(today)}" in html
        assert _api(client, tenant, now_visit["id"])["status"] == "attended"
        attended = _row(html, now_visit["id"])
        assert 'class="check-in"' not in attended and 'class="no-show"' not in attended

        wednesday = f"/console/schedule?day={clinic['day'].isoformat()}"
        row = _row(_page(console, wednesday), later["id"])
        assert 'class="check-in"' not in row and ">No-show<" in row  # not started: no check-in offered
        early = _post(console, f"/console/schedule/consultations/{later['id']}/check-in", wednesday)
        assert early.status_code == 422
        assert "check the family in once it has started" in early.get_data(as_text=True)
        assert _api(client, tenant, later["id"])["status"] == "scheduled"
        missed = _post(console, f"/console/schedule/consultations/{later['id']}/no-show", wednesday)
        assert missed.status_code == 303
        html = html_lib.unescape(_page(console, missed.headers["Location"]))
        assert f"Omar Family's consultation on {_label(clinic['day'])}, 09:00 is marked a no-show." in html
    assert _api(client, tenant, later["id"])["status"] == "no_show"


def _book_at(client, tenant, name: str, starts) -> dict:
    lead = create_lead(client, tenant, first_name=name, last_name="Family", phone=None)
    resp = client.post(
        f"/api/leads/{lead['id']}/consultations",
        json={"starts_at": starts.isoformat()},
        headers=tenant.headers("front_desk"),
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_a_bad_day_or_provider_in_the_address_is_said_and_the_page_still_shows(app, tenant, clinic):
    with app.test_client() as console:
        console_log_in(console, tenant, "front_desk")
        html = _page(console, "/console/schedule?day=2030-02-31&provider=99999", status=422)
        assert "Day: “2030-02-31” is not a date." in html
        assert "Provider: that provider is not one of the clinic's." in html_lib.unescape(html)
        today = clock.now().astimezone(ZoneInfo(kit.ZONE)).date()
        assert f"No consultations on {_label(today)}." in html
        assert "is not a date" in _page(console, "/console/schedule/book?day=tomorrow", status=422)
        # A typo's far year or an id too long for the database: said the same way, never a 500.
        assert "is not a date" in _page(console, "/console/schedule?day=9999-12-31&view=week", status=422)
        too_long = "9" * 30
        unknown = _page(console, f"/console/schedule?provider={too_long}", status=422)
        assert "Provider: that provider" in unknown
        assert "Find the family" in _page(console, f"/console/schedule/book?lead={too_long}")
