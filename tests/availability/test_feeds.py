"""Providers' busy times from their own calendar feed, served by a local HTTP server: a weekly
recurring event (with one exception date) blocks its slots while the exception's slot is offered,
a free event blocks nothing, the event's details are never kept nor shown, and a feed that fails
keeps its last good copy and tells the admin."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from app.domains.availability.models import BusyBlock
from app.platform import clock
from app.platform.delivery import addresses
from tests.availability.kit import (
    at,
    consultation_type,
    local_times,
    next_weekday,
    provider,
    set_clinic_zone,
    settings,
    slots,
)
from tests.consultations.kit import run_due


def ics(tuesday) -> bytes:
    def stamp(day, hhmm):
        return f"{day:%Y%m%d}T{hhmm.replace(':', '')}00"

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Test//Provider calendar//EN",
        "BEGIN:VEVENT",
        "UID:weekly-surgery@example.com",
        "SUMMARY:Surgery for Mrs Private",
        "LOCATION:St Mary's",
        f"DTSTART;TZID=America/New_York:{stamp(tuesday, '10:00')}",
        f"DTEND;TZID=America/New_York:{stamp(tuesday, '11:00')}",
        "RRULE:FREQ=WEEKLY;COUNT=6",
        f"EXDATE;TZID=America/New_York:{stamp(tuesday + timedelta(days=7), '10:00')}",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:free-note@example.com",
        "SUMMARY:Lunch maybe",
        "TRANSP:TRANSPARENT",
        f"DTSTART;TZID=America/New_York:{stamp(tuesday, '14:00')}",
        f"DTEND;TZID=America/New_York:{stamp(tuesday, '15:00')}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def feed_server():
    """A local server of one .ics; `state["status"]` makes it fail, `state["redirect"]` sends every
    GET there (a 302)."""
    state = {"body": b"", "status": 200, "hits": 0, "redirect": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["hits"] += 1
            if state["redirect"]:
                self.send_response(302)
                self.send_header("Location", state["redirect"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(state["status"])
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            if state["status"] == 200:
                self.wfile.write(state["body"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/private/abc123/basic.ics"
    server.shutdown()
    server.server_close()


def read_feeds(app, db, now: datetime) -> None:
    """The beat's task, as a worker runs it at `now`, then the ledger at that time."""
    from workers.availability import read_feeds as task

    with app.app_context():
        task(now.isoformat())
    run_due(app, db, now)


def test_a_weekly_busy_event_blocks_its_slots_but_not_its_exception_and_a_failure_keeps_the_copy(
    app, client, db, tenant, feed_server
):
    state, url = feed_server
    tuesday = next_weekday(1)
    state["body"] = ics(tuesday)
    set_clinic_zone(client, tenant)
    settings(client, tenant, slot_step_minutes=60, min_notice_minutes=0, horizon_days=60)
    doctor = provider(client, tenant, feed_url=url)
    assert doctor["has_feed"] is True and doctor["feed_status"] == "pending"
    assert "feed_url" not in doctor and url not in str(doctor)  # the secret address is never shown
    kind = consultation_type(client, tenant, [doctor["id"]])

    now = clock.now()
    read_feeds(app, db, now)
    assert state["hits"] == 1
    shown = client.get(f"/api/availability/providers/{doctor['id']}", headers=tenant.headers()).get_json()
    assert shown["feed_status"] == "ok" and shown["feed_error"] is None and shown["feed_ok_at"]
    found = slots(client, tenant, kind["id"], tuesday, tuesday + timedelta(days=14))
    assert "10:00" not in local_times(found, tuesday)  # the recurring event
    assert "14:00" in local_times(found, tuesday)  # a free (transparent) event blocks nothing
    assert "10:00" in local_times(found, tuesday + timedelta(days=7))  # the exception date
    assert "10:00" not in local_times(found, tuesday + timedelta(days=14))
    with db.unit_of_work() as session:
        blocks = list(session.scalars(sa.select(BusyBlock).where(BusyBlock.provider_id == doctor["id"])))
    assert len(blocks) == 5 and blocks[0].starts_at == at(tuesday, "10:00")  # six weekly, one excepted
    assert "Private" not in str(
        client.get("/api/availability/providers", headers=tenant.headers()).get_json()
    )

    # Read again within the interval: nothing is fetched.
    read_feeds(app, db, now + timedelta(minutes=1))
    assert state["hits"] == 1

    # The feed breaks: the last good copy still blocks, the admin is told once.
    state["status"] = 500
    later = now + timedelta(minutes=16)
    read_feeds(app, db, later)
    shown = client.get(f"/api/availability/providers/{doctor['id']}", headers=tenant.headers()).get_json()
    assert shown["feed_status"] == "failing" and shown["feed_error"] == f"the feed {addresses.UNREACHABLE}"
    assert "10:00" not in local_times(slots(client, tenant, kind["id"], tuesday, tuesday), tuesday)
    inbox = client.get("/api/me/notifications", headers=tenant.headers()).get_json()
    told = [n for n in inbox if "calendar feed" in n["title"]]
    assert len(told) == 1 and "Dr. Lee" in told[0]["title"]
    read_feeds(app, db, later + timedelta(minutes=16))
    inbox = client.get("/api/me/notifications", headers=tenant.headers()).get_json()
    assert len([n for n in inbox if "calendar feed" in n["title"]]) == 1  # not again while failing

    # Mended, it reads again and the status is ok.
    state["status"] = 200
    read_feeds(app, db, later + timedelta(minutes=32))
    shown = client.get(f"/api/availability/providers/{doctor['id']}", headers=tenant.headers()).get_json()
    assert shown["feed_status"] == "ok"


def feed_error(client, tenant, provider_id: int) -> str:
    shown = client.get(f"/api/availability/providers/{provider_id}", headers=tenant.headers()).get_json()
    assert shown["feed_status"] == "failing", shown
    return shown["feed_error"]


def test_a_feed_on_an_internal_address_is_never_fetched_and_every_failure_reads_the_same(
    app, client, db, tenant, feed_server, monkeypatch
):
    """Issue 73 #5: the worker never reads an internal address for a clinic admin, and what the
    admin reads back (a bad status, a closed port, a refused address) cannot tell them apart."""
    state, url = feed_server
    state["status"] = 500
    answering = provider(client, tenant, name="Dr. Answers", feed_url=url)
    closed = provider(client, tenant, name="Dr. Closed", feed_url="http://127.0.0.1:1/basic.ics")
    now = clock.now()
    read_feeds(app, db, now)  # the tests' allowance: the loopback may be reached
    assert state["hits"] == 1
    errors = {feed_error(client, tenant, answering["id"]), feed_error(client, tenant, closed["id"])}

    monkeypatch.setattr(app.config["SETTINGS"], "webhook_allow_private_addresses", False)  # production's
    internal = provider(client, tenant, name="Dr. Internal", feed_url=url)
    read_feeds(app, db, now + timedelta(minutes=16))
    assert state["hits"] == 1  # neither feed on 127.0.0.1 was asked again
    errors.add(feed_error(client, tenant, internal["id"]))
    assert errors == {f"the feed {addresses.UNREACHABLE}"}


def test_a_feed_redirected_round_in_circles_is_given_up_after_a_few_hops(
    app, client, db, tenant, feed_server
):
    """Issue 73 #5: redirects are followed by the guard, each hop checked, and only a few of them."""
    state, url = feed_server
    state["redirect"] = url  # to itself, for ever
    doctor = provider(client, tenant, feed_url=url)
    read_feeds(app, db, clock.now())
    assert state["hits"] == 1 + addresses.MAX_REDIRECTS
    assert feed_error(client, tenant, doctor["id"]) == f"the feed {addresses.UNREACHABLE}"
