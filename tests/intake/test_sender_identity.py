"""A clinic's sender identity is its own: its SMS number and Messaging Service are in the engine's
Twilio account (asked of Twilio, here the local stand-in), its email domain is one the platform
operator verified for it, and none is another clinic's, even when two clinics write it at once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import Clinic
from app.platform.db import Database
from tests.onboarding.kit import bearer, run_cli
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import sms_settings, use

PLATFORM_TOKEN = "platform-operator-token-0123456789abcdef"
OURS, NOT_OURS = "+14155550100", "+14155550177"
POOL = "MG" + "a" * 32
OTHER_ACCOUNTS_POOL = "MG" + "b" * 32


@pytest.fixture
def twilio_account(app, monkeypatch):
    """The engine sends through the stand-in Twilio, whose account holds OURS and POOL."""
    with sms_provider() as (provider, url):
        use(monkeypatch, app.config["SETTINGS"], **sms_settings(url))
        provider.numbers.add(OURS)
        provider.services.add(POOL)
        yield provider


@pytest.fixture
def platform(app, monkeypatch):
    use(monkeypatch, app.config["SETTINGS"], platform_token=PLATFORM_TOKEN)
    return bearer(PLATFORM_TOKEN)


def put_settings(client, tenant, **settings):
    return client.put("/api/clinic", json={"settings": settings}, headers=tenant.headers())


def own_number(client, tenant) -> str | None:
    return client.get("/api/clinic", headers=tenant.headers()).get_json()["settings"].get("sms_number")


def verify(client, platform, clinic_id: int, domain: str):
    return client.post(
        f"/api/platform/clinics/{clinic_id}/sender-domains", json={"domain": domain}, headers=platform
    )


def settings_errors(resp) -> dict:
    return resp.get_json()["errors"]["json"]["settings"]


def test_a_number_or_messaging_service_outside_the_engines_twilio_account_is_422(
    client, tenant, twilio_account
):
    refused = put_settings(client, tenant, sms_number=NOT_OURS)
    assert refused.status_code == 422 and "sms_number" in settings_errors(refused)
    refused = put_settings(client, tenant, sms_messaging_service_sid=OTHER_ACCOUNTS_POOL)
    assert refused.status_code == 422 and "sms_messaging_service_sid" in settings_errors(refused)
    assert own_number(client, tenant) is None
    # The account's own: taken.
    assert put_settings(client, tenant, sms_number=OURS, sms_messaging_service_sid=POOL).status_code == 200
    settings = client.get("/api/clinic", headers=tenant.headers()).get_json()["settings"]
    assert (settings["sms_number"], settings["sms_messaging_service_sid"]) == (OURS, POOL)


def test_another_clinics_messaging_service_is_409(client, tenant, make_tenant, twilio_account):
    other = make_tenant()
    assert put_settings(client, tenant, sms_messaging_service_sid=POOL).status_code == 200
    taken = put_settings(client, other, sms_messaging_service_sid=POOL)
    assert taken.status_code == 409 and "sms_messaging_service_sid" in taken.get_json()["message"]
    # Let go of, it can be taken.
    assert put_settings(client, tenant, sms_messaging_service_sid=None).status_code == 200
    assert put_settings(client, other, sms_messaging_service_sid=POOL).status_code == 200


def test_twilio_unreachable_is_503_and_changes_nothing(client, tenant, app, monkeypatch):
    with sms_provider() as (_, url):
        pass  # its port is closed now
    use(monkeypatch, app.config["SETTINGS"], **sms_settings(url))
    resp = put_settings(client, tenant, sms_number=OURS)
    assert resp.status_code == 503
    assert own_number(client, tenant) is None


def test_email_from_needs_a_domain_the_platform_verified_for_this_clinic(
    client, tenant, make_tenant, platform
):
    other = make_tenant()
    refused = put_settings(client, tenant, email_from="hello@smileortho.com")
    assert refused.status_code == 422 and "email_from" in settings_errors(refused)
    verified = verify(client, platform, tenant.id, "SmileOrtho.com")
    assert verified.status_code == 201 and verified.get_json()["domain"] == "smileortho.com"
    assert put_settings(client, tenant, email_from="hello@smileortho.com").status_code == 200
    listed = client.get(f"/api/platform/clinics/{tenant.id}/sender-domains", headers=platform).get_json()
    assert [d["domain"] for d in listed] == ["smileortho.com"]
    # Another clinic can neither send from it nor have it verified for itself.
    taken = put_settings(client, other, email_from="front@smileortho.com")
    assert taken.status_code == 409 and "email_from" in settings_errors(taken)
    again = verify(client, platform, other.id, "smileortho.com")
    assert again.status_code == 409 and "domain" in again.get_json()["errors"]["json"]
    # A clinic's own credentials do not open the platform API.
    assert verify(client, other.headers(), other.id, "northside.com").status_code == 403
    bad = verify(client, platform, other.id, "not a domain")
    assert bad.status_code == 422 and "domain" in bad.get_json()["errors"]["json"]


def test_two_clinics_writing_the_same_number_at_once_cannot_both_have_it(
    client, tenant, make_tenant, twilio_account
):
    """Both requests pass the read check before either writes (Twilio answers slowly): the unique
    index decides, and the loser gets a 409 naming the field, not a 500."""
    other = make_tenant()
    twilio_account.lookup_stall = 1.0
    start = threading.Barrier(2)
    answers = {}

    def write(tenant_):
        web = tenant_.app.test_client()  # its own request, session and database connection
        start.wait()
        answers[tenant_.id] = put_settings(web, tenant_, sms_number=OURS)

    threads = [threading.Thread(target=write, args=(t,)) for t in (tenant, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(resp.status_code for resp in answers.values())
    assert statuses == [200, 409], [resp.get_json() for resp in answers.values()]
    loser = next(resp for resp in answers.values() if resp.status_code == 409)
    assert "sms_number" in loser.get_json()["message"]
    with tenant.app.extensions["followup.db"].unit_of_work() as session:
        holders = session.scalars(sa.select(Clinic.id).where(Clinic.sms_number == OURS)).all()
    assert len(holders) == 1


@pytest.mark.parametrize(
    ("column", "value"),
    [("sms_number", OURS), ("sms_messaging_service_sid", POOL), ("email_sender_domain", "smileortho.com")],
)
def test_the_database_refuses_a_second_holder_of_a_sender_identity(
    migrated_database, tenant, make_tenant, column, value
):
    """Below the service: two connections writing the same identity for two clinics; the second
    commit fails on the unique index (on PostgreSQL it waits for the first, then fails)."""
    other = make_tenant()
    first, second = Database(migrated_database), Database(migrated_database)
    try:
        with first.unit_of_work() as session:
            session.execute(sa.update(Clinic).where(Clinic.id == tenant.id).values({column: value}))
        with pytest.raises(IntegrityError), second.unit_of_work() as session:
            session.execute(sa.update(Clinic).where(Clinic.id == other.id).values({column: value}))
    finally:
        first.engine.dispose()
        second.engine.dispose()


def test_the_operators_cli_verifies_a_domain_for_a_clinic(app, client, tenant, make_tenant, tmp_path):
    other = make_tenant()
    done = run_cli(app, tmp_path, "clinics", "verify-domain", str(tenant.id), "SmileOrtho.com")
    assert done.returncode == 0, done.stderr
    assert put_settings(client, tenant, email_from="hello@smileortho.com").status_code == 200
    taken = run_cli(app, tmp_path, "clinics", "verify-domain", str(other.id), "smileortho.com")
    assert taken.returncode == 1 and "DOMAIN: verified for another clinic" in taken.stderr
    bad = run_cli(app, tmp_path, "clinics", "verify-domain", str(other.id), "not a domain")
    assert bad.returncode == 2 and "DOMAIN" in bad.stderr
