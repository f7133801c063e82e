"""The Redis broker transport, made to survive its connection being lost with messages in flight.

kombu's Redis channel outlives its connection: closed after the connection dropped, it moves the
messages it had delivered back to their queue, and a task finishing late acknowledges its message on
it. By then the connection has let go of the transport (or the channel of the connection), so
building a Redis client for either raises AttributeError, which is no connection error: Celery's
consumer lets it through and the worker process exits instead of reconnecting. Here a detached
channel raises a connection error instead, which Celery logs and rides out, and gives up restoring
its delivered messages: they are still in the broker's unacked set, which sends them again after the
visibility timeout; a broker that came back empty forgot them, and the ledger's redispatch sweep
sends their jobs again (a second delivery of a job is a no-op: the claim).
"""

from __future__ import annotations

import logging

import redis as redis_lib
from kombu.transport import redis

log = logging.getLogger(__name__)


def _detached(channel) -> bool:
    return channel.connection is None or channel.connection.client is None


class QoS(redis.QoS):
    def restore_unacked(self, client=None):
        if client is None and _detached(self.channel):
            log.warning(
                "broker connection lost with %d message(s) delivered; the broker or the ledger resends them",
                len(self._delivered),
            )
            self._delivered.clear()
            return
        super().restore_unacked(client)


class Channel(redis.Channel):
    QoS = QoS

    def _connparams(self, asynchronous=False):
        if _detached(self):
            raise redis_lib.ConnectionError("the broker connection of this channel is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
