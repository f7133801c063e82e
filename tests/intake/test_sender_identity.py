"""A clinic's sender identity is its own: its SMS number and Messaging Service are ones the platform
operator assigned to it from the engine's Twilio account (asked of Twilio, here the local
stand-in), never the shared SMS_FROM; its email domain is one the platform operator verified for
it; and none is another clinic's, even when two are written at once."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.domains.auth.models import AssignedSmsSender, Clinic
from app.platform.db import Database
from tests.onboarding.kit import bearer, run_cli
from tests.outbound.fakes import sms_provider
from tests.outbound.kit import sms_settings, use

PLATFORM_TOKEN = "platform-operator-token-0123456789abcdef"
OURS, NOT_OURS, SHARED = "+14155550100", "+14155550177", "+14155550123"
POOL = "MG" + "a" * 32
OTHER_ACCOUNTS_POOL = "MG" + "b" * 32


@pytest.fixture
def twilio_account(app, monkeypatch):
    """The engine sends through the stand-in Twilio, whose account holds OURS and POOL."""
    with sms_provider() as (provider, url):
        use(monkeypatch, app.config["SETTINGS"], **sms_settings(url))
        provider.numbers.update({OURS, SHARED})
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


def assign(client, platform, clinic_id: int, sender: str):
    return client.post(
        f"/api/platform/clinics/{clinic_id}/sms-senders", json={"sender": sender}, headers=platform
    )


def assigned(client, platform, clinic_id: int) -> dict[str, bool]:
    listed = client.get(f"/api/platform/clinics/{clinic_id}/sms-senders", headers=platform)
    assert listed.status_code == 200, listed.get_json()
    return {each["sender"]: each["in_use"] for each in listed.get_json()}


def test_the_operator_assigns_only_numbers_and_services_of_the_engines_twilio_account(
    client, tenant, twilio_account, platform
):
    refused = assign(client, platform, tenant.id, NOT_OURS)
    assert refused.status_code == 422 and "sender" in refused.get_json()["errors"]["json"]
    refused = assign(client, platform, tenant.id, OTHER_ACCOUNTS_POOL)
    assert refused.status_code == 422 and "sender" in refused.get_json()["errors"]["json"]
    bad = assign(client, platform, tenant.id, "415-555-0100")
    assert bad.status_code == 422 and "sender" in bad.get_json()["errors"]["json"]
    assert assigned(client, platform, tenant.id) == {}
    # The account's own: assigned, then chosen by the clinic's admin.
    assert assign(client, platform, tenant.id, OURS).status_code == 201
    made = assign(client, platform, tenant.id, POOL)
    assert made.status_code == 201 and made.get_json()["kind"] == "messaging_service"
    assert put_settings(client, tenant, sms_number=OURS, sms_messaging_service_sid=POOL).status_code == 200
    settings = client.get("/api/clinic", headers=tenant.headers()).get_json()["settings"]
    assert (settings["sms_number"], settings["sms_messaging_service_sid"]) == (OURS, POOL)
    assert assigned(client, platform, tenant.id) == {OURS: True, POOL: True}


def test_a_clinic_admin_cannot_choose_a_number_or_service_not_assigned_to_it(client, tenant, twilio_account):
    """In the engine's account, but the operator assigned it to no clinic: not the clinic's to take."""
    refused = put_settings(client, tenant, sms_number=OURS)
    assert refused.status_code == 422 and "sms_number" in settings_errors(refused)
    refused = put_settings(client, tenant, sms_messaging_service_sid=POOL)
    assert refused.status_code == 422 and "sms_messaging_service_sid" in settings_errors(refused)
    assert own_number(client, tenant) is None


def test_a_clinic_admin_cannot_claim_the_shared_number(
    client, tenant, app, monkeypatch, twilio_account, platform
):
    """SMS_FROM is in the engine's account and no clinic's own number: before, the claim was taken."""
    use(monkeypatch, app.config["SETTINGS"], sms_from=SHARED)
    refused = put_settings(client, tenant, sms_number=SHARED)
    assert refused.status_code == 422 and "sms_number" in settings_errors(refused)
    assert own_number(client, tenant) is None
    refused = assign(client, platform, tenant.id, SHARED)
    assert refused.status_code == 422 and "sender" in refused.get_json()["errors"]["json"]


def test_the_shared_whatsapp_sender_is_no_clinics_own(
    client, tenant, app, monkeypatch, twilio_account, platform
):
    """FOLLOWUP_WHATSAPP_FROM is refused exactly as SMS_FROM is (issue 73): assigned to one clinic,
    every clinic's WhatsApp STOPs and replies to it could be taken as that clinic's."""
    use(monkeypatch, app.config["SETTINGS"], whatsapp_from=SHARED)
    refused = assign(client, platform, tenant.id, SHARED)
    assert refused.status_code == 422 and "sender" in refused.get_json()["errors"]["json"]
    assert assigned(client, platform, tenant.id) == {}
    refused = put_settings(client, tenant, whatsapp_number=SHARED)
    assert refused.status_code == 422 and "whatsapp_number" in settings_errors(refused)


def test_the_operator_cannot_assign_another_clinics_sender_and_releases_it(
    client, tenant, make_tenant, twilio_account, platform
):
    other = make_tenant()
    assert assign(client, platform, tenant.id, POOL).status_code == 201
    assert assign(client, platform, tenant.id, POOL).status_code == 201  # again: the same, nothing new
    assert put_settings(client, tenant, sms_messaging_service_sid=POOL).status_code == 200
    taken = assign(client, platform, other.id, POOL)
    assert taken.status_code == 409 and "sender" in taken.get_json()["errors"]["json"]
    refused = put_settings(client, other, sms_messaging_service_sid=POOL)
    assert refused.status_code == 422 and "sms_messaging_service_sid" in settings_errors(refused)
    # A clinic's own credentials do not open the platform API.
    assert assign(client, other.headers(), other.id, POOL).status_code == 403
    # Released: the clinic's settings stop naming it (it sends from SMS_FROM); then another's.
    assert (
        client.delete(f"/api/platform/clinics/{tenant.id}/sms-senders/{POOL}", headers=platform).status_code
        == 204
    )
    after = client.get("/api/clinic", headers=tenant.headers()).get_json()["settings"]
    assert after.get("sms_messaging_service_sid") is None
    gone = client.delete(f"/api/platform/clinics/{tenant.id}/sms-senders/{POOL}", headers=platform)
    assert gone.status_code == 404
    assert assign(client, platform, other.id, POOL).status_code == 201
    assert put_settings(client, other, sms_messaging_service_sid=POOL).status_code == 200


def test_twilio_unreachable_is_503_and_assigns_nothing(client, tenant, app, monkeypatch, platform):
    with sms_provider() as (_, url):
        pass  # its port is closed now
    use(monkeypatch, app.config["SETTINGS"], **sms_settings(url))
    resp = assign(client, platform, tenant.id, OURS)
    assert resp.status_code == 503
    assert assigned(client, platform, tenant.id) == {}


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
    assert taken.status_code == 422 and "email_from" in settings_errors(taken)
    again = verify(client, platform, other.id, "smileortho.com")
    assert again.status_code == 409 and "domain" in again.get_json()["errors"]["json"]
    # A clinic's own credentials do not open the platform API.
    assert verify(client, other.headers(), other.id, "northside.com").status_code == 403
    bad = verify(client, platform, other.id, "not a domain")
    assert bad.status_code == 422 and "domain" in bad.get_json()["errors"]["json"]


def test_two_clinics_assigned_the_same_number_at_once_cannot_both_have_it(
    client, tenant, make_tenant, twilio_account, platform
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
        answers[tenant_.id] = assign(web, platform, tenant_.id, OURS)

    threads = [threading.Thread(target=write, args=(t,)) for t in (tenant, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(resp.status_code for resp in answers.values())
    assert statuses == [201, 409], [resp.get_json() for resp in answers.values()]
    loser = next(resp for resp in answers.values() if resp.status_code == 409)
    assert "sender" in loser.get_json()["errors"]["json"]
    with tenant.app.extensions["followup.db"].unit_of_work() as session:
        holders = session.scalars(
            sa.select(AssignedSmsSender.clinic_id).where(AssignedSmsSender.sender == OURS)
        )
        assert len(holders.all()) == 1


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


def test_the_operators_cli_assigns_and_releases_an_sms_sender(app, client, tenant, make_tenant, tmp_path):
    other = make_tenant()
    done = run_cli(app, tmp_path, "clinics", "assign-sms-sender", str(tenant.id), OURS)
    assert done.returncode == 0, done.stderr
    assert put_settings(client, tenant, sms_number=OURS).status_code == 200
    taken = run_cli(app, tmp_path, "clinics", "assign-sms-sender", str(other.id), OURS)
    assert taken.returncode == 1 and "SENDER: assigned to another clinic" in taken.stderr
    bad = run_cli(app, tmp_path, "clinics", "assign-sms-sender", str(other.id), "MG123")
    assert bad.returncode == 2 and "SENDER" in bad.stderr
    released = run_cli(app, tmp_path, "clinics", "assign-sms-sender", "--release", str(tenant.id), OURS)
    assert released.returncode == 0, released.stderr
    assert own_number(client, tenant) is None
    refused = put_settings(client, tenant, sms_number=OURS)
    assert refused.status_code == 422 and "sms_number" in settings_errors(refused)


def test_the_shared_email_from_domain_is_no_clinics_own(client, tenant, app, monkeypatch, platform):
    use(monkeypatch, app.config["SETTINGS"], email_from="Follow-up <followup@platform.example>")
    refused = verify(client, platform, tenant.id, "Platform.example")
    assert refused.status_code == 422 and "domain" in refused.get_json()["errors"]["json"]
    refused = put_settings(client, tenant, email_from="front@platform.example")
    assert refused.status_code == 422 and "email_from" in settings_errors(refused)
