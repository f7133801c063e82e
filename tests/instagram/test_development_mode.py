"""`make run`'s Graph stand-in (development mode): any token is the account its path names (a token
ending in an account's id is that account's, asked whose it is), anyone
who wrote has a profile, and what the engine sends lands in var/outbox/instagram.log; the runner
starts it unless INSTAGRAM_GRAPH_URL is set, with development secrets for Meta's webhook."""

from __future__ import annotations

import json

from app.devtools import runner
from app.devtools.instagram import GraphStandIn
from tests.automation.outreachkit import configure_clinic
from tests.instagram.kit import dm, inbound_of
from tests.outbound.kit import use
from tests.workers import thread_worker, wait_for


def test_a_family_writes_and_is_answered_through_the_development_stand_in(
    app, client, db, tenant, tmp_path, monkeypatch
):
    configure_clinic(client, tenant)  # midday there: the reply is not held for the night
    outbox = tmp_path / "outbox" / "instagram.log"
    stand_in = GraphStandIn(development=True, outbox=outbox).start()
    try:
        use(monkeypatch, app.config["SETTINGS"], instagram_graph_url=stand_in.url, instagram_app_secret="dev")
        resp = client.put(
            "/api/integrations/instagram",
            json={"account_id": "17841400000000099", "access_token": "dev-token-17841400000000099"},
            headers=tenant.headers(),
        )
        assert resp.status_code == 200, resp.get_json()
        dm(client, account_id="17841400000000099", igsid="1790000000001234", text="Hi!", secret="dev")
        [row] = inbound_of(db, tenant.id)
        lead = client.get(f"/api/leads/{row.lead_id}", headers=tenant.headers()).get_json()
        assert (lead["first_name"], lead["last_name"]) == ("Family", "1234")  # the stand-in's profile
        sent = client.post(
            f"/api/leads/{row.lead_id}/messages",
            json={"channel": "instagram", "body": "Welcome!"},
            headers=tenant.headers("treatment_coordinator"),
        )
        assert sent.status_code == 201, sent.get_json()
        with thread_worker(app):
            wait_for(lambda: outbox.exists() and outbox.read_text().strip(), timeout=60)
        [line] = [json.loads(text) for text in outbox.read_text().splitlines()]
        assert (line["account"], line["recipient"], line["text"]) == (
            "17841400000000099",
            "1790000000001234",
            "Welcome!",
        )
    finally:
        stand_in.stop()


def test_the_runner_starts_the_stand_in_unless_a_graph_url_is_set(tmp_path, monkeypatch):
    monkeypatch.delenv("INSTAGRAM_GRAPH_URL", raising=False)
    env: dict[str, str] = {}
    stand_in = runner._start_instagram_stand_in(env, tmp_path)
    try:
        assert env["INSTAGRAM_GRAPH_URL"] == stand_in.url
        assert env["INSTAGRAM_APP_SECRET"] == (tmp_path / "instagram_app_secret").read_text().strip()
        assert env["INSTAGRAM_VERIFY_TOKEN"]
    finally:
        stand_in.stop()
    monkeypatch.setenv("INSTAGRAM_GRAPH_URL", "https://graph.instagram.com")
    assert runner._start_instagram_stand_in({}, tmp_path) is None
