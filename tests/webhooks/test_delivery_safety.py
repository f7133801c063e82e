"""Webhook deliveries: POST after the claim commits, re-sent with the same Idempotency-Key when the
outcome was lost; URLs on private addresses refused (422 at subscription, refused again at delivery)."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.domains.webhooks import posting
from app.domains.webhooks.models import DELIVERED, FAILED, SENDING, WebhookDelivery
from app.platform import clock
from app.platform.delivery import addresses
from tests.leadkit import create_lead
from tests.tasks.taskkit import run_at
from tests.webhooks.test_webhooks import Receiver, deliveries, process_events, subscribe


@pytest.fixture
def receiver():
    r = Receiver(failures=0)
    yield r
    r.close()


def delivery_row(db):
    with db.unit_of_work() as session:
        return session.scalars(sa.select(WebhookDelivery)).one()


def test_the_post_happens_after_the_claim_commits(app, client, db, tenant, receiver, monkeypatch):
    seen = []
    real_post = addresses.post

    def post_and_look(url, **kwargs):
        seen.append(delivery_row(db).status)  # another connection: sees only what was committed
        return real_post(url, **kwargs)

    monkeypatch.setattr(addresses, "post", post_and_look)
    subscribe(client, tenant, receiver.url, ["lead.created"])
    create_lead(client, tenant)
    process_events(app, db)
    [job] = deliveries(db)
    assert run_at(app, job, clock.now()) == "done"
    assert seen == [SENDING] and delivery_row(db).status == DELIVERED


def test_a_lost_outcome_is_resent_with_the_same_idempotency_key(
    app, client, db, tenant, receiver, monkeypatch
):
    subscribe(client, tenant, receiver.url, ["lead.created"])
    create_lead(client, tenant)
    process_events(app, db)
    [job] = deliveries(db)

    def lost(**_):
        raise RuntimeError("database went away after the POST")

    monkeypatch.setattr(posting, "record_outcome", lost)
    run_at(app, job, clock.now())
    monkeypatch.undo()
    assert delivery_row(db).status == SENDING and len(receiver.accepted) == 1
    later = clock.now() + timedelta(minutes=10)
    with app.app_context():
        assert posting.recover_stuck_deliveries(db=db, now=later) == 1
    row = delivery_row(db)
    with db.unit_of_work() as session:
        from app.platform.scheduling.models import ScheduledJob

        retry = session.get(ScheduledJob, row.job_id)
    assert run_at(app, retry, retry.due_at + timedelta(seconds=1)) == "done"
    assert delivery_row(db).status == DELIVERED
    keys = [headers["Idempotency-Key"] for headers, _ in receiver.accepted]
    assert len(keys) == 2 and keys[0] == keys[1] == f"delivery-{row.id}"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",  # NAT64 of 169.254.169.254
        "http://[64:ff9b::10.1.2.3]/hook",  # NAT64 of 10.1.2.3
        "http://[2002:c0a8:000a::1]/hook",  # 6to4 of 192.168.0.10
        "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
        "http://[::127.0.0.1]/hook",  # IPv4-compatible loopback
        "http://[::10.1.2.3]/hook",  # IPv4-compatible private
    ],
)
def test_private_loopback_link_local_and_multicast_urls_are_422_on_url(app, client, tenant, monkeypatch, url):
    monkeypatch.setattr(app.config["SETTINGS"], "webhook_allow_private_addresses", False)
    resp = client.post(
        "/api/webhooks", json={"url": url, "event_types": ["lead.created"]}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "url" in resp.get_json()["errors"]["json"]


def test_public_addresses_are_accepted():
    assert not addresses.is_refused("93.184.216.34") and not addresses.is_refused("2606:2800:220:1::1")
    assert addresses.is_refused("100.64.0.1") and addresses.is_refused("0.0.0.0")
    # The IPv6 forms that route to a public IPv4 address stay allowed.
    for public in ("64:ff9b::93.184.216.34", "2002:5db8:d822::1", "::ffff:93.184.216.34"):
        assert not addresses.is_refused(public), public


def test_the_address_is_checked_again_at_delivery(app, client, db, tenant, receiver, monkeypatch):
    subscribe(client, tenant, receiver.url, ["lead.created"])  # allowed when made
    create_lead(client, tenant)
    process_events(app, db)
    [job] = deliveries(db)
    monkeypatch.setattr(app.config["SETTINGS"], "webhook_allow_private_addresses", False)
    run_at(app, job, clock.now())
    row = delivery_row(db)
    # Failed at once (a refusal is not retried), with the one text every failure to reach has.
    assert row.status == FAILED and addresses.UNREACHABLE in row.last_error and receiver.hits == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",  # the metadata service (link-local)
        "http://[::ffff:169.254.169.254]/latest/meta-data",  # the same, IPv4-mapped
        "http://[fd00:ec2::254]/latest/meta-data",  # AWS's IPv6 metadata service
        "http://0.0.0.0:8080/hook",  # unspecified: this host
        "http://[fe80::1]/hook",  # link-local IPv6
        "http://224.0.0.1/hook",  # multicast
    ],
)
def test_metadata_link_local_and_unspecified_urls_are_refused_even_where_private_ones_are_allowed(
    client, tenant, url
):
    """Issue 73 #5: the tests' (and a local setup's) allowance of private addresses reaches the
    loopback and the LAN, never the cloud's metadata service."""
    resp = client.post(
        "/api/webhooks", json={"url": url, "event_types": ["lead.created"]}, headers=tenant.headers()
    )
    assert resp.status_code == 422 and "url" in resp.get_json()["errors"]["json"]
