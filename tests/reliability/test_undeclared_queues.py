"""The first minute after a deploy on RabbitMQ: the web process may publish before any worker has
declared its queues (a broker just started, a new virtual host). RabbitMQ drops a message sent to an
exchange nobody declared; messages published together (one pipelined batch) were sent undeclared."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit, urlunsplit

from app.platform.celery_config import QUEUES
from app.platform.scheduling.dispatch import Dispatcher, Message
from tests.brokers import Broker
from tests.workers import wait_for


def _by_another_name(url: str) -> str:
    parts = urlsplit(url)
    other = "localhost" if parts.hostname != "localhost" else "127.0.0.1"
    assert parts.hostname in ("127.0.0.1", "localhost"), "the test names the local broker another way"
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(parts.hostname, other)))


def _channel_of(app):
    return app.extensions["followup.dispatcher"].celery.connection_for_write()


def test_messages_published_together_before_any_worker_declared_a_queue_are_kept(rabbitmq_app):
    broker = Broker("rabbitmq", rabbitmq_app)
    with _channel_of(rabbitmq_app) as connection, connection.channel() as channel:
        for name in QUEUES:  # the broker as a fresh one: no queue or exchange of ours
            channel.queue_delete(name)
            channel.exchange_delete(name)
    try:
        # A process's first publish: connections that never declared anything. kombu's producer pools
        # are shared by every Celery app of a process with the same broker URL, and remember what
        # their connections declared: the same broker by another name has pools of its own.
        settings = rabbitmq_app.config["SETTINGS"]
        fresh = dataclasses.replace(settings, broker_url=_by_another_name(settings.broker_url))
        dispatcher = Dispatcher(fresh)
        dispatcher.publish([Message(job_id, "realtime") for job_id in (1, 2, 3)])
        # All three kept: counted once the broker has routed them (a count read at once may see the
        # first alone, the others still on their way; one lost never arrives and fails the wait).
        wait_for(lambda: broker.ready("realtime") == 3, timeout=10)
    finally:
        broker.purge()
        celery = rabbitmq_app.extensions["followup.dispatcher"].celery
        with _channel_of(rabbitmq_app) as connection, connection.channel() as channel:
            for queue in celery.amqp.queues.values():  # for the session's app, whose connections
                queue.bind(channel).declare()  # remember having declared them
