"""The health page's queue depths: Redis LLEN, RabbitMQ by a passive queue_declare, and a broker
that does not answer reported as down (never an error page)."""

from __future__ import annotations

from dataclasses import replace

from kombu import Connection, Exchange, Queue

from app.console import health
from tests.brokers import rabbitmq_vhost
from tests.outbound.fakes import free_port
from tests.requirements import need_rabbitmq


def test_rabbitmq_queue_depths_are_read_without_consuming(app):
    need_rabbitmq()
    with rabbitmq_vhost() as url:
        with Connection(url) as connection:
            queue = Queue("bulk", Exchange("bulk"), routing_key="bulk")
            producer = connection.Producer()
            for n in range(3):
                producer.publish({"n": n}, exchange=queue.exchange, routing_key="bulk", declare=[queue])
        settings = replace(app.config["SETTINGS"], broker_url=url)
        first = health.queue_depths(settings=settings, redis=None)
        again = health.queue_depths(settings=settings, redis=None)
    assert first["broker"] == "amqp" and first["up"] is True
    assert first["queues"]["bulk"] == again["queues"]["bulk"] == 3
    assert first["queues"]["realtime"] is None  # never declared: nothing was ever sent to it


def test_a_broker_that_does_not_answer_is_reported_down(app):
    settings = replace(app.config["SETTINGS"], broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}//")
    assert health.queue_depths(settings=settings, redis=None) == {"broker": "amqp", "up": False, "queues": {}}
