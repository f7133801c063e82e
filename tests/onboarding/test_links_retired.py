"""A change to who a user is retires what was handed out before it (issue 58 item 3): a new email,
role or password, or the user disabled, spends every pending password-setup link and raises the
user's token version, so neither a link sent to a mistyped address nor a token issued before opens
the account afterwards."""

from __future__ import annotations

from tests.conftest import TEST_PASSWORD
from tests.onboarding.kit import bearer, login, set_password, token_of
from tests.onboarding.test_reinvite import invitation_links

NEW_PASSWORD = "a-fresh-Passphrase-for-2027"


def invite(client, tenant, email: str, role: str = "treatment_coordinator") -> int:
    answer = client.post(
        "/api/users", headers=tenant.headers(), json={"email": email, "name": "Bob Newman", "role": role}
    )
    assert answer.status_code == 201, answer.json
    return answer.json["id"]


def change(client, tenant, user_id: int, **body):
    answer = client.put(f"/api/users/{user_id}", json=body, headers=tenant.headers())
    assert answer.status_code == 200, answer.json
    return answer.json


def test_the_invitation_sent_to_a_mistyped_address_stops_working_once_the_email_is_fixed(client, db, tenant):
    bob = invite(client, tenant, "bob@typo.example")
    [sent_to_the_typo] = invitation_links(db, "bob@typo.example")

    change(client, tenant, bob, email="bob@tenant.example")

    refused = set_password(client, token_of(sent_to_the_typo))
    assert refused.status_code == 410 and refused.json["errors"] == {"json": {"token": ["used"]}}
    assert login(client, "bob@tenant.example").status_code == 401  # the typo's holder set no password
    # The admin sends a link to the right address; that one works.
    assert client.post(f"/api/users/{bob}/invitation", headers=tenant.headers()).status_code == 204
    [right] = invitation_links(db, "bob@tenant.example")
    assert set_password(client, token_of(right)).status_code == 204
    assert login(client, "bob@tenant.example").status_code == 200


def test_a_role_change_or_a_disabled_user_retires_the_pending_link(client, db, tenant):
    demoted = invite(client, tenant, "dana@tenant.example", role="clinic_admin")
    [for_an_admin] = invitation_links(db, "dana@tenant.example")
    change(client, tenant, demoted, role="front_desk")
    assert set_password(client, token_of(for_an_admin)).status_code == 410

    paused = invite(client, tenant, "paul@tenant.example")
    [before] = invitation_links(db, "paul@tenant.example")
    change(client, tenant, paused, active=False)
    change(client, tenant, paused, active=True)  # enabled again: the old link stays spent
    assert set_password(client, token_of(before)).status_code == 410


def test_a_reset_link_is_refused_after_the_password_is_changed(client, db, tenant):
    """A fresh link (the admin's re-invitation, the way a user without a password gets a new one)
    is spent when the password is set another way meanwhile: by the admin, then by the user."""
    carla = invite(client, tenant, "carla@tenant.example")
    client.post(f"/api/users/{carla}/invitation", headers=tenant.headers())
    pending = invitation_links(db, "carla@tenant.example")[-1]
    change(client, tenant, carla, password=TEST_PASSWORD)
    assert set_password(client, token_of(pending), password=NEW_PASSWORD).status_code == 410
    assert login(client, "carla@tenant.example").status_code == 200
    assert login(client, "carla@tenant.example", NEW_PASSWORD).status_code == 401


def test_an_email_change_ends_the_tokens_issued_before_it(client, tenant):
    user = tenant.users["treatment_coordinator"]
    before = tenant.token("treatment_coordinator")
    assert client.get("/api/me", headers=bearer(before)).status_code == 200

    change(client, tenant, user.id, email="coordinator.new@tenant.example")

    refused = client.get("/api/me", headers=bearer(before))
    assert refused.status_code == 401 and "revoked" in refused.json["message"]
    assert client.get("/api/me", headers=tenant.headers("treatment_coordinator")).status_code == 200
    # The same email again (a form saved unchanged) revokes nothing.
    current = tenant.token("treatment_coordinator")
    change(client, tenant, user.id, email="Coordinator.New@tenant.example", name="Cora")
    assert client.get("/api/me", headers=bearer(current)).status_code == 200
