"""A second factor for staff (issue 58 item 8): TOTP codes and recovery codes at the API's login
and the console's, a clinic that requires one of its admins, throttling, an admin's reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
import sqlalchemy as sa

from app.domains.auth.models import RecoveryCode, SecondFactor
from app.platform import clock
from app.platform.audit.models import AuditEvent
from tests.conftest import TEST_PASSWORD
from tests.console.test_console_pages import csrf_of, log_in

# The middle of a 30-second step, so a step either side is a whole step away.
NOON = datetime(2026, 11, 27, 12, 0, 15, tzinfo=UTC)
STEP = timedelta(seconds=30)


@pytest.fixture
def at(monkeypatch):
    """Set the server's clock (every request reads it through app.platform.clock.now)."""

    def set_clock(moment: datetime) -> datetime:
        monkeypatch.setattr(clock, "now", lambda: moment)
        return moment

    set_clock(NOON)
    return set_clock


def login(client, email, code=None, password=TEST_PASSWORD, address="127.0.0.1"):
    body = {"email": email, "password": password} | ({"code": code} if code is not None else {})
    return client.post("/api/auth/login", json=body, environ_base={"REMOTE_ADDR": address})


def enrol(client, email) -> tuple[pyotp.TOTP, list[str]]:
    """Enrol and confirm a second factor at NOON's step: the app's TOTP and the recovery codes."""
    started = client.post("/api/auth/second-factor", json={"email": email, "password": TEST_PASSWORD})
    assert started.status_code == 201, started.json
    totp = pyotp.TOTP(started.json["secret"])
    confirmed = client.post(
        "/api/auth/second-factor/confirm",
        json={"email": email, "password": TEST_PASSWORD, "code": totp.at(NOON)},
    )
    assert confirmed.status_code == 200, confirmed.json
    return totp, confirmed.json["recovery_codes"]


def test_enrolment_gives_a_secret_its_uri_and_a_qr_code_then_recovery_codes_and_tokens(client, tenant, at):
    email = tenant.users["doctor"].email
    started = client.post("/api/auth/second-factor", json={"email": email, "password": TEST_PASSWORD})
    assert started.status_code == 201
    assert started.json["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={started.json['secret']}" in started.json["otpauth_uri"]
    assert started.json["qr_code"].startswith("data:image/svg+xml")
    # Not confirmed yet: the password alone still logs in.
    assert login(client, email).status_code == 200
    totp = pyotp.TOTP(started.json["secret"])
    wrong = client.post(
        "/api/auth/second-factor/confirm", json={"email": email, "password": TEST_PASSWORD, "code": "000000"}
    )
    assert wrong.status_code == 400 and "code" in wrong.json["errors"]["json"]
    confirmed = client.post(
        "/api/auth/second-factor/confirm",
        json={"email": email, "password": TEST_PASSWORD, "code": totp.at(NOON)},
    )
    assert confirmed.status_code == 200
    codes = confirmed.json["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    me = client.get("/api/me", headers={"Authorization": f"Bearer {confirmed.json['access_token']}"})
    assert me.json["id"] == tenant.users["doctor"].id
    with tenant.app.extensions["followup.db"].unit_of_work() as session:
        stored = session.scalars(sa.select(RecoveryCode.code_hash)).all()
        secret = session.execute(sa.text("SELECT secret FROM second_factors")).scalar_one()
    # The codes are kept hashed (argon2), the secret encrypted: neither in clear.
    assert all(h.startswith("$argon2") for h in stored) and not any(c in h for c in codes for h in stored)
    assert started.json["secret"] not in secret


def test_login_asks_for_the_code_and_a_code_of_the_window_passes_once(client, tenant, at):
    email = tenant.users["treatment_coordinator"].email
    totp, _ = enrol(client, email)
    asked = login(client, email)
    assert asked.status_code == 401
    assert asked.json["code"] == "second_factor_required"
    # The next step's code (the phone's clock a little ahead) passes...
    assert login(client, email, totp.at(NOON + STEP)).status_code == 200
    # ...once: the same code again is refused, and so is an earlier step's.
    replayed = login(client, email, totp.at(NOON + STEP))
    assert replayed.status_code == 401 and "code" in replayed.json["errors"]["json"]
    assert login(client, email, totp.at(NOON)).status_code == 401
    # Later, a code of the step before now (typed as it turned) still passes; two steps off does not.
    at(NOON + 4 * STEP)
    assert login(client, email, totp.at(NOON + 3 * STEP)).status_code == 200
    assert login(client, email, totp.at(NOON + 6 * STEP)).status_code == 401
    assert login(client, email, totp.at(NOON + 4 * STEP)).status_code == 200
    assert login(client, email, "123456", password="wrong").status_code == 401


def test_a_recovery_code_works_once(client, tenant, at):
    email = tenant.users["front_desk"].email
    _, codes = enrol(client, email)
    assert login(client, email, codes[3].upper()).status_code == 200  # typed in capitals: the same code
    again = login(client, email, codes[3])
    assert again.status_code == 401
    assert login(client, email, codes[4]).status_code == 200
    me = client.get("/api/me/second-factor", headers=tenant.headers("front_desk"))
    assert me.json == {"enabled": True, "required": False, "recovery_codes_left": 8}


def test_wrong_codes_count_as_failed_logins(client, tenant, at):
    email = tenant.users["doctor"].email
    totp, _ = enrol(client, email)
    for n in range(3):  # login_max_failures=3 in the test settings
        assert login(client, email, f"00000{n}").status_code == 401
    locked = login(client, email, totp.at(NOON + STEP))  # even the right code waits
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    # The password without a code is not a guess: it does not count against the user.
    other = tenant.users["clinic_admin"].email
    enrol(client, other)
    for _ in range(4):
        assert login(client, other).json["code"] == "second_factor_required"


def test_a_right_password_does_not_reset_the_count_of_wrong_codes(client, tenant, at):
    """Issue 73 finding 2: wrong codes with a password-only login between them, from one address,
    were never refused (the password's success reset the count)."""
    email = tenant.users["doctor"].email
    totp, _ = enrol(client, email)
    for n in range(3):  # login_max_failures=3 in the test settings
        if n:
            assert login(client, email).json["code"] == "second_factor_required"  # the password alone
        assert login(client, email, f"00000{n}").status_code == 401
    assert login(client, email).json["code"] == "second_factor_required"
    refused = login(client, email, totp.at(NOON + STEP))  # even the right code waits now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_wrong_codes_count_per_user_from_every_address_until_a_right_one(client, tenant, at):
    email = tenant.users["doctor"].email
    totp, codes = enrol(client, email)
    # Two wrong, then a right code: the count starts again.
    for n in range(2):
        assert login(client, email, f"11111{n}", address=f"198.51.100.{n}").status_code == 401
    assert login(client, email, codes[0], address="198.51.100.9").status_code == 200
    # Three wrong from three addresses, and the fourth code is refused from a fourth.
    for n in range(3):
        assert login(client, email, f"22222{n}", address=f"203.0.113.{n}").status_code == 401
    refused = login(client, email, totp.at(NOON + STEP), address="203.0.113.99")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0


def test_a_clinic_that_requires_it_makes_its_admin_enrol_first(client, tenant, at):
    admin = tenant.users["clinic_admin"]
    changed = client.put(
        "/api/clinic", json={"settings": {"require_admin_second_factor": True}}, headers=tenant.headers()
    )
    assert changed.status_code == 200
    refused = login(client, admin.email)
    assert refused.status_code == 403
    assert refused.json["code"] == "second_factor_enrollment_required"
    assert "/api/auth/second-factor" in refused.json["message"]
    # Other roles are not required to.
    assert login(client, tenant.users["doctor"].email).status_code == 200
    # Enrolling is open to the password, and its confirmation signs the admin in.
    totp, _ = enrol(client, admin.email)
    assert login(client, admin.email).json["code"] == "second_factor_required"
    assert login(client, admin.email, totp.at(NOON + STEP)).status_code == 200
    status = client.get("/api/me/second-factor", headers=tenant.headers())
    assert status.json["required"] is True and status.json["enabled"] is True
    # Nor may the admin remove it while the clinic requires it.
    removal = client.post(
        "/api/me/second-factor/disable", json={"code": totp.at(NOON + 2 * STEP)}, headers=tenant.headers()
    )
    assert removal.status_code == 409


def test_a_required_factor_ends_what_an_admin_opened_before_until_they_enrol(app, client, tenant, at):
    """Issue 73 finding 3: an admin's refresh token (and open sessions) outlived the clinic's switch
    to requiring a second factor."""
    admin = tenant.users["clinic_admin"]
    pair = login(client, admin.email).json
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    browser = app.test_client()
    log_in(browser, tenant)
    assert browser.get("/console/failures").status_code == 200
    changed = client.put(
        "/api/clinic", json={"settings": {"require_admin_second_factor": True}}, headers=bearer
    )
    assert changed.status_code == 200
    # The API: the open access token and the refresh token are refused, saying what to do.
    for refused in (
        client.get("/api/signing-secrets", headers=bearer),
        client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
    ):
        assert refused.status_code == 403, refused.json
        assert refused.json["code"] == "second_factor_enrollment_required"
    # The console: the session ends, and the login page says why.
    page = browser.get("/console/failures")
    assert page.status_code == 302 and "/console/login" in page.headers["Location"]
    assert b"requires a second factor" in browser.get(page.headers["Location"]).data
    assert browser.get("/console/failures").status_code == 302
    # Other roles carry on.
    assert client.get("/api/me", headers=tenant.headers("doctor")).status_code == 200
    # Once enrolled, the refresh token (not spent by its refusal) works again.
    enrol(client, admin.email)
    renewed = client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert renewed.status_code == 200
    fresh = {"Authorization": f"Bearer {renewed.json['access_token']}"}
    assert client.get("/api/signing-secrets", headers=fresh).status_code == 200


def test_an_admin_resets_a_users_second_factor_and_it_is_audited(client, tenant, at):
    user = tenant.users["doctor"]
    enrol(client, user.email)
    assert login(client, user.email).status_code == 401
    # Not a role without the permission.
    assert (
        client.delete(f"/api/users/{user.id}/second-factor", headers=tenant.headers("doctor")).status_code
        == 403
    )
    reset = client.delete(f"/api/users/{user.id}/second-factor", headers=tenant.headers())
    assert reset.status_code == 204
    assert login(client, user.email).status_code == 200
    assert client.delete(f"/api/users/{user.id}/second-factor", headers=tenant.headers()).status_code == 404
    with tenant.app.extensions["followup.db"].unit_of_work() as session:
        event = session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.second_factor_reset"))
        assert event.subject_id == str(user.id)
        assert event.actor == f"user:{tenant.users['clinic_admin'].id}"
        assert session.scalar(sa.select(sa.func.count()).select_from(SecondFactor)) == 0


def test_another_clinics_admin_cannot_reset_it(client, tenant, make_tenant, at):
    user = tenant.users["doctor"]
    enrol(client, user.email)
    stranger = make_tenant("Elsewhere")
    resp = client.delete(f"/api/users/{user.id}/second-factor", headers=stranger.headers())
    assert resp.status_code == 404
    assert login(client, user.email).status_code == 401


def test_disable_and_new_recovery_codes_need_a_code(client, tenant, at):
    email = tenant.users["doctor"].email
    totp, codes = enrol(client, email)
    headers = tenant.headers("doctor")
    wrong = client.post("/api/me/second-factor/recovery-codes", json={"code": "999999"}, headers=headers)
    assert wrong.status_code == 401
    fresh = client.post(
        "/api/me/second-factor/recovery-codes", json={"code": totp.at(NOON + STEP)}, headers=headers
    )
    assert fresh.status_code == 200 and len(fresh.json["recovery_codes"]) == 10
    assert login(client, email, codes[0]).status_code == 401  # the earlier codes stopped working
    off = client.post(
        "/api/me/second-factor/disable", json={"code": fresh.json["recovery_codes"][0]}, headers=headers
    )
    assert off.status_code == 204
    assert login(client, email).status_code == 200
    again = client.post("/api/me/second-factor/disable", json={"code": "123456"}, headers=headers)
    assert again.status_code == 409


def test_api_keys_are_unaffected(client, tenant, at):
    enrol(client, tenant.users["clinic_admin"].email)
    created = client.post(
        "/api/api-keys", json={"name": "crm", "permissions": ["lead:read"]}, headers=tenant.headers()
    )
    assert client.get("/api/me", headers={"X-API-Key": created.json["key"]}).status_code == 200
    status = client.get("/api/me/second-factor", headers={"X-API-Key": created.json["key"]})
    assert status.status_code == 403


# --- the console -------------------------------------------------------------------------------


def test_the_console_login_asks_for_the_code(app, tenant, at):
    email = tenant.users["clinic_admin"].email
    browser = app.test_client()
    totp, _ = enrol(browser, email)
    form = browser.get("/console/login")
    step = browser.post(
        "/console/login",
        data={"email": email, "password": TEST_PASSWORD, "csrf_token": csrf_of(form.get_data(as_text=True))},
    )
    assert step.status_code == 302 and "/console/login/code" in step.headers["Location"]
    assert browser.get("/console/failures").status_code == 302  # not signed in by the password alone
    page = browser.get("/console/login/code")
    assert page.status_code == 200 and b"authenticator" in page.data
    wrong = browser.post(
        "/console/login/code", data={"code": "000000", "csrf_token": csrf_of(page.get_data(as_text=True))}
    )
    assert wrong.status_code == 401 and b"wrong or already used" in wrong.data
    right = browser.post(
        "/console/login/code",
        data={"code": totp.at(NOON + STEP), "csrf_token": csrf_of(page.get_data(as_text=True))},
    )
    assert right.status_code == 302
    assert browser.get("/console/failures").status_code == 200
    # Without a pending first step, the code page sends back to the login.
    assert app.test_client().get("/console/login/code").status_code == 302


def test_the_console_code_step_expires(app, tenant, at):
    email = tenant.users["clinic_admin"].email
    browser = app.test_client()
    totp, _ = enrol(browser, email)
    form = browser.get("/console/login")
    browser.post(
        "/console/login",
        data={"email": email, "password": TEST_PASSWORD, "csrf_token": csrf_of(form.get_data(as_text=True))},
    )
    page = browser.get("/console/login/code")
    at(NOON + timedelta(minutes=10))
    late = browser.post(
        "/console/login/code",
        data={
            "code": totp.at(NOON + timedelta(minutes=10)),
            "csrf_token": csrf_of(page.get_data(as_text=True)),
        },
    )
    assert late.status_code == 302 and "/console/login/code" not in late.headers["Location"]
    assert browser.get("/console/failures").status_code == 302
