"""A sender's pace (FOLLOWUP_SMS_SENDER_RATE, FOLLOWUP_EMAIL_SENDER_RATE): through real sends to the
local providers, a sender's messages never arrive faster than its pace in any window, each arrives
once, and one sender's pace holds no other sender's messages back."""

from __future__ import annotations

import bisect
import logging
from collections import Counter
from dataclasses import replace

import pytest

from app.domains.outbound import outgoing
from app.domains.outbound.providers import channels
from app.domains.outbound.providers.pacing import Pacers
from app.domains.outbound.worker import batches
from app.platform import clock
from app.platform.config import ConfigError, Settings
from tests.conftest import TEST_PHI_KEY, TEST_SECRET_KEY
from tests.outbound.fakes import free_port, sms_provider, smtp_server
from tests.outbound.kit import (
    FAST_DELIVERY,
    all_in,
    queue_emails,
    queue_sms,
    sms_settings,
    smtp_settings,
    use,
)
from tests.workers import thread_worker, wait_for

PACE = "4/second"
PER_WINDOW, WINDOW = 4, 1.0


@pytest.fixture
def fast_delivery(app, monkeypatch):
    settings = app.config["SETTINGS"]
    use(monkeypatch, settings, **FAST_DELIVERY)
    return settings


def busiest_window(times: list[float]) -> int:
    """The most arrivals in any WINDOW seconds, the window sliding over the arrival times."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + WINDOW) - i for i, t in enumerate(times)), default=0)


def queue_sms_batch(app, db, tenant, n: int, prefix: str) -> list[int]:
    """`n` SMS of the clinic queued together: one `notification.deliver_batch` job."""
    messages = [
        {
            "clinic_id": tenant.id,
            "to_address": f"+1555{tenant.id:03d}{i:04d}",
            "template": "lead_message",
            "context": {"body": f"Your consultation is tomorrow ({i})"},
            "dedupe_key": f"{prefix}:{i}",
        }
        for i in range(n)
    ]
    with app.app_context(), db.unit_of_work() as session:
        return outgoing.queue_many(session=session, channel="sms", messages=messages, now=clock.now())


def test_sms_of_one_sender_arrive_at_its_pace_each_once(app, db, tenant, fast_delivery, monkeypatch):
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, sms_sender_rate=PACE, **sms_settings(url))
        ids = queue_sms(app, tenant, 12, prefix="paced")  # a delivery job each: both worker threads send
        with thread_worker(app, concurrency=2):
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=30)
        arrivals = list(provider.arrivals)
        to = Counter(m["To"] for m in provider.messages)
    assert len(to) == 12 and set(to.values()) == {1}
    assert {sender for _, sender in arrivals} == {"+15550000000"}  # SMS_FROM: the one sender
    assert busiest_window([t for t, _ in arrivals]) <= PER_WINDOW


def test_a_second_sender_is_not_held_by_the_first_ones_pace(app, db, make_tenant, fast_delivery, monkeypatch):
    first = make_tenant("First", settings={"sms_number": "+15550000001"})
    second = make_tenant("Second", settings={"sms_number": "+15550000002"})
    with sms_provider() as (provider, url):
        use(monkeypatch, fast_delivery, sms_sender_rate=PACE, **sms_settings(url))
        ids = queue_sms_batch(app, db, first, 8, "first") + queue_sms_batch(app, db, second, 4, "second")
        with thread_worker(app, concurrency=2):  # a batch job each, side by side
            wait_for(lambda: all_in(db, ids, {"sent"}), timeout=30)
        arrivals = sorted(provider.arrivals)
        to = Counter(m["To"] for m in provider.messages)
    assert len(to) == 12 and set(to.values()) == {1}
    of_first = [t for t, sender in arrivals if sender == "+15550000001"]
    of_second = [t for t, sender in arrivals if sender == "+15550000002"]
    assert (len(of_first), len(of_second)) == (8, 4)
    assert busiest_window(of_first) <= PER_WINDOW
    # The second's messages went while the first's fifth waited for its sender's next slot, and the
    # busiest window carried both senders' whole pace: the first's pace held none of them.
    assert max(of_second) < of_first[PER_WINDOW]
    assert busiest_window(of_first + of_second) == 2 * PER_WINDOW


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "lock-step"])
def test_emails_of_a_batch_reach_the_relay_at_its_pace(
    app, db, tenant, fast_delivery, monkeypatch, pipelining
):
    with smtp_server() as (server, port):
        server.pipelining = pipelining
        use(monkeypatch, fast_delivery, email_sender_rate=PACE, **smtp_settings(port))
        ids = queue_emails(app, tenant, 6, prefix="paced")
        with app.app_context():
            assert batches.deliver_batch(db=db, send_hooks=db.wiring.send_hooks, notification_ids=ids) == {
                "sent": 6
            }
        assert sorted(server.accepted) == [f"paced:{i}" for i in range(6)]
        assert set(server.accepted.values()) == {1}
        assert busiest_window([t for t, _ in server.arrivals]) <= PER_WINDOW
        assert server.pipelined_envelopes == (6 if pipelining else 0)  # paced, still pipelined


def test_with_its_redis_unreachable_messages_go_out_unpaced(app, fast_delivery, caplog):
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    with sms_provider() as (provider, url):
        paced = {"sms_sender_rate": "1/second", **sms_settings(url)}
        settings = replace(fast_delivery, redis_url=dead_redis, **paced)
        pacers = Pacers()  # the process's, as an engine holds them
        with caplog.at_level(logging.WARNING, logger="app.domains.outbound.providers.pacing"):
            for i in range(3):
                channels.send(outgoing_sms(i, sender="+15550000009"), settings, pacers)
        assert len(provider.messages) == 3
    [warning] = [r for r in caplog.records if r.name.endswith("pacing")]  # once, not per message
    assert "unpaced" in warning.getMessage() and "+1555" not in warning.getMessage()


def test_the_console_is_never_paced(app, redis, fast_delivery, monkeypatch):
    use(monkeypatch, fast_delivery, email_backend="console", sms_backend="console")
    use(monkeypatch, fast_delivery, email_sender_rate="1/minute", sms_sender_rate="1/minute")
    channels.send(outgoing_sms(0, sender="+15550000009"), fast_delivery, Pacers())
    assert redis.keys("followup-pace:*") == []  # a paced send's window would be kept a minute


def outgoing_sms(i: int, *, sender: str) -> channels.Outgoing:
    return channels.Outgoing(
        notification_id=i,
        channel="sms",
        to=f"+1555777{i:04d}",
        sender=sender,
        subject="",
        text=f"Reminder {i}",
        html=None,
        dedupe_key=f"unit:{i}",
    )


@pytest.mark.parametrize(
    ("field", "value", "variable"),
    [
        ("sms_sender_rate", "fast", "FOLLOWUP_SMS_SENDER_RATE"),
        ("email_sender_rate", "10/second;20/minute", "FOLLOWUP_EMAIL_SENDER_RATE"),
        ("sms_sender_rate", "100/hour", "FOLLOWUP_SMS_SENDER_RATE"),  # a quota: a clinic's rate limit
    ],
)
def test_a_sender_rate_is_checked_when_the_settings_load(field, value, variable):
    settings = Settings(secret_key=TEST_SECRET_KEY, phi_encryption_key=TEST_PHI_KEY, **{field: value})
    with pytest.raises(ConfigError, match=variable):
        settings.validate()


def test_the_sender_rates_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FOLLOWUP_EMAIL_SENDER_RATE", "10/second")
    monkeypatch.setenv("FOLLOWUP_SMS_SENDER_RATE", "1 per second")
    settings = Settings.from_env()
    assert (settings.email_sender_rate, settings.sms_sender_rate) == ("10/second", "1 per second")
    settings.validate()
    assert (Settings().email_sender_rate, Settings().sms_sender_rate) == (None, None)  # no pace
