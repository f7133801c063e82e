"""An invited user sets their password in the web app from the emailed link (issue 77): the link's
page exists, takes the token from the link's fragment, refuses a bad password beside its field and a
spent link above the form, and lands the person on their day; a forgotten password is reset the same
way, from a link emailed to the account (and to nobody else)."""

from __future__ import annotations

import re

from app.domains.auth import onboarding
from app.domains.auth.models import User
from app.platform import clock
from tests.console.test_console_pages import csrf_of

NEW_PASSWORD = "a long enough passphrase 42"


def setup_token(app, tenant, role: str = "treatment_coordinator") -> tuple[str, str]:
    """A fresh setup link for the tenant's user of `role`: (the link, its token)."""
    db = app.extensions["followup.db"]
    with db.unit_of_work() as session:
        user = session.get(User, tenant.users[role].id)
        issued = onboarding.issue_setup_token(
            session=session, user=user, purpose="invite", settings=db.settings, now=clock.now()
        )
    return issued["link"], issued["token"]


def test_the_setup_link_opens_a_page_that_sets_the_password_once(app, client, tenant):
    link, token = setup_token(app, tenant)
    path = re.sub(r"^https?://[^/]+", "", link).partition("#")[0]
    page = client.get(path)
    assert page.status_code == 200, "the link in the email must open a page of the web app"
    html = page.get_data(as_text=True)
    assert "Set your password" in html and "set_password.js" in html
    csrf = csrf_of(html)
    short = client.post(
        path, data={"csrf_token": csrf, "token": token, "password": "short", "again": "short"}
    )
    assert short.status_code == 422 and 'id="err-password"' in short.get_data(as_text=True)
    differ = client.post(
        path, data={"csrf_token": csrf, "token": token, "password": NEW_PASSWORD, "again": NEW_PASSWORD + "x"}
    )
    assert differ.status_code == 422 and "differ" in differ.get_data(as_text=True)
    done = client.post(
        path, data={"csrf_token": csrf, "token": token, "password": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")  # their day
    assert client.get("/console/today").status_code == 200  # signed in
    email = tenant.users["treatment_coordinator"].email
    login = client.post("/api/auth/login", json={"email": email, "password": NEW_PASSWORD})
    assert login.status_code == 200, login.get_json()
    csrf = csrf_of(client.get(path).get_data(as_text=True))  # the session is new once signed in
    again = client.post(
        path, data={"csrf_token": csrf, "token": token, "password": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert again.status_code == 410 and "already used" in again.get_data(as_text=True)


def test_in_the_browser_the_link_alone_is_enough(app, tenant, live_server, page):
    """Opened from the email, the page reads the token from the link (the field is not shown, and the
    address bar keeps no token), and the two passwords set it."""
    link, _ = setup_token(app, tenant)
    page.goto(live_server + re.sub(r"^https?://[^/]+", "", link))
    assert page.locator("#field-token").is_hidden()
    assert "token=" not in page.url
    page.fill("#password", NEW_PASSWORD)
    page.fill("#again", NEW_PASSWORD)
    page.click("text=Set my password")
    page.wait_for_url("**/console/today")  # signed in, on their day
    assert "Your password is set" in page.content()


def reset_links(app, user_id: int) -> list[str]:
    """The password links emailed to the user, oldest first."""
    import sqlalchemy as sa

    from app.domains.outbound.models import Notification

    with app.extensions["followup.db"].unit_of_work() as session:
        rows = session.scalars(
            sa.select(Notification)
            .where(Notification.recipient_user_id == user_id, Notification.template == "password_reset")
            .order_by(Notification.id)
        )
        return [row.context["link"] for row in rows]


def test_a_forgotten_password_is_reset_from_a_link_sent_to_the_account_only(app, client, tenant):
    user = tenant.users["treatment_coordinator"]
    login = client.get("/console/login").get_data(as_text=True)
    assert "/console/forgot-password" in login
    csrf = csrf_of(client.get("/console/forgot-password").get_data(as_text=True))
    for email in (user.email.upper(), "nobody@example.com"):
        asked = client.post("/console/forgot-password", data={"csrf_token": csrf, "email": email})
        assert asked.status_code == 302  # the same answer whether or not the email has an account
    assert client.post("/api/auth/password-reset", json={"email": user.email}).status_code == 202
    assert client.post("/api/auth/password-reset", json={"email": "nobody@example.com"}).status_code == 202
    bad = client.post("/api/auth/password-reset", json={"email": "not an email"})
    assert bad.status_code == 422 and "email" in str(bad.get_json())
    [link] = reset_links(app, user.id)  # asked three times within minutes: one link
    path = re.sub(r"^https?://[^/]+", "", link).partition("#")[0]
    token = link.partition("#token=")[2]
    done = client.post(
        path, data={"csrf_token": csrf, "token": token, "password": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/console/")
    assert (
        client.post("/api/auth/login", json={"email": user.email, "password": NEW_PASSWORD}).status_code
        == 200
    )
