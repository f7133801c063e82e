"""An email is unique within a clinic, not across clinics (issue 42): a clinic's admin creating a
user whose email another clinic uses gets the 201 a fresh email gets (no cross-clinic 409), and every
way in by email (API login, console login, password setup) reaches the right one of its accounts."""

from __future__ import annotations

import re
import threading

import pytest
import sqlalchemy as sa

from app.domains.outbound.models import Notification
from tests.conftest import TEST_PASSWORD
from tests.console.test_console_pages import csrf_of
from tests.onboarding.kit import bearer, set_password, token_of

OWN_PASSWORD = "clinic-b-own-password"
LINK = re.compile(r"\S+/set-password#token=[A-Za-z0-9_-]+")


@pytest.fixture
def clinics(make_tenant):
    return make_tenant("Clinic A"), make_tenant("Clinic B")


def add_user(client, tenant, email, **fields):
    body = {"email": email, "name": "Pat Both", "role": "doctor", **fields}
    return client.post("/api/users", headers=tenant.headers(), json=body)


def login(client, email, password, **extra):
    return client.post("/api/auth/login", json={"email": email, "password": password, **extra})


def me(client, answer) -> dict:
    assert answer.status_code == 200, answer.json
    return client.get("/api/me", headers=bearer(answer.json["access_token"])).json


def test_another_clinics_email_is_created_like_a_fresh_one_and_both_log_in(client, clinics):
    a, b = clinics
    theirs = a.users["doctor"]
    fresh = add_user(client, b, "fresh@clinic-b.example", password=OWN_PASSWORD)
    taken_elsewhere = add_user(client, b, theirs.email.upper(), password=OWN_PASSWORD)
    assert fresh.status_code == taken_elsewhere.status_code == 201, taken_elsewhere.json
    assert taken_elsewhere.json["email"] == theirs.email
    # Each logs in with their own password, into their own clinic.
    as_a = me(client, login(client, theirs.email, TEST_PASSWORD))
    as_b = me(client, login(client, theirs.email, OWN_PASSWORD))
    assert (as_a["id"], as_a["clinic_id"]) == (theirs.id, a.id)
    assert (as_b["id"], as_b["clinic_id"]) == (taken_elsewhere.json["id"], b.id)
    assert login(client, theirs.email, "neither-of-them-1").status_code == 401


def test_the_same_password_in_two_clinics_asks_for_the_clinic(client, clinics):
    a, b = clinics
    email = a.users["doctor"].email
    created = add_user(client, b, email, password=TEST_PASSWORD)
    assert created.status_code == 201
    both = login(client, email, TEST_PASSWORD)
    assert both.status_code == 409 and both.json["code"] == "clinic_required"
    assert "clinic" in both.json["errors"]["json"]
    assert me(client, login(client, email, TEST_PASSWORD, clinic=a.id))["id"] == a.users["doctor"].id
    assert me(client, login(client, email, TEST_PASSWORD, clinic=b.id))["id"] == created.json["id"]
    # A clinic where the email has no account: the 401 of a wrong password, nothing more.
    elsewhere = login(client, email, TEST_PASSWORD, clinic=b.id + 1000)
    unknown = login(client, "nobody@nowhere.example", TEST_PASSWORD)
    assert elsewhere.status_code == unknown.status_code == 401
    assert elsewhere.json["message"] == unknown.json["message"]
    for bad in ("a", 0, -1, 1.5, 2**40):
        answer = login(client, email, TEST_PASSWORD, clinic=bad)
        assert answer.status_code == 422 and "clinic" in answer.json["errors"]["json"], bad


def test_a_disabled_account_does_not_make_the_login_ambiguous(client, clinics):
    a, b = clinics
    email = a.users["doctor"].email
    created = add_user(client, b, email, password=TEST_PASSWORD, active=False)
    assert created.status_code == 201
    assert me(client, login(client, email, TEST_PASSWORD))["id"] == a.users["doctor"].id
    disabled = login(client, email, TEST_PASSWORD, clinic=b.id)
    assert disabled.status_code == 401 and "disabled" in disabled.json["message"]


def test_an_email_used_in_the_same_clinic_is_still_409_naming_email(client, clinics):
    a, b = clinics
    colleague = a.users["front_desk"].email
    again = add_user(client, a, colleague.upper(), password=OWN_PASSWORD)
    assert again.status_code == 409 and again.json["errors"]["json"]["email"] == ["taken"]
    # Changing a user's email: a colleague's is taken, another clinic's user's is not.
    doctor = a.users["doctor"].id
    renamed = client.put(f"/api/users/{doctor}", headers=a.headers(), json={"email": colleague})
    assert renamed.status_code == 409 and "email" in renamed.json["errors"]["json"]
    theirs = b.users["doctor"].email
    moved = client.put(f"/api/users/{doctor}", headers=a.headers(), json={"email": theirs})
    assert moved.status_code == 200 and moved.json["email"] == theirs


def invitation_link(db, clinic_id: int) -> str:
    with db.unit_of_work() as session:
        [body] = session.scalars(
            sa.select(Notification.body).where(
                Notification.kind == "invitation", Notification.clinic_id == clinic_id
            )
        ).all()
    return LINK.search(body).group(0)


def test_an_invitation_sets_the_password_of_its_clinics_account_only(client, db, clinics):
    a, b = clinics
    email = a.users["doctor"].email
    invited = add_user(client, b, email)  # no password: invited by email
    assert invited.status_code == 201
    assert set_password(client, token_of(invitation_link(db, b.id)), OWN_PASSWORD).status_code == 204
    assert me(client, login(client, email, OWN_PASSWORD))["id"] == invited.json["id"]
    assert me(client, login(client, email, TEST_PASSWORD))["id"] == a.users["doctor"].id


def console_login(app, email, password, clinic=""):
    console = app.test_client()
    token = csrf_of(console.get("/console/login").get_data(as_text=True))
    data = {"email": email, "password": password, "clinic": clinic, "csrf_token": token}
    return console, console.post("/console/login", data=data)


def test_the_console_logs_in_either_account(app, client, clinics):
    a, b = clinics
    email = a.users["clinic_admin"].email
    created = add_user(client, b, email, role="clinic_admin", password=TEST_PASSWORD)
    assert created.status_code == 201
    _, ambiguous = console_login(app, email, TEST_PASSWORD)
    assert ambiguous.status_code == 409 and "clinic" in ambiguous.get_data(as_text=True)
    for tenant, user_id in ((a, a.users["clinic_admin"].id), (b, created.json["id"])):
        console, answer = console_login(app, email, TEST_PASSWORD, clinic=str(tenant.id))
        assert answer.status_code == 302, answer.get_data(as_text=True)
        assert console.get("/console/failures").status_code == 200
        with console.session_transaction("/console/") as signed_in:
            assert signed_in["user_id"] == user_id
    _, bad = console_login(app, email, TEST_PASSWORD, clinic="abc")
    assert bad.status_code == 400 and "Clinic id" in bad.get_data(as_text=True)


def test_requests_creating_one_email_at_once_get_one_201_and_409s(client, clinics):
    """They all pass the read check before any writes (the password's argon2 hash lies between):
    the unique index decides, and every loser gets the 409 naming `email`, never a 500."""
    _, b = clinics
    start = threading.Barrier(4)
    answers = []

    def create():
        web = b.app.test_client()  # its own request, session and database connection
        start.wait()
        answers.append(add_user(web, b, "twins@clinic-b.example", password=OWN_PASSWORD))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answer.status_code for answer in answers) == [201, 409, 409, 409], [a.json for a in answers]
    assert all(a.json["errors"]["json"]["email"] == ["taken"] for a in answers if a.status_code == 409)
