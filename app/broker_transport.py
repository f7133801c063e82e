"""The Redis broker transport, made to survive its connection being lost with messages in flight.

kombu's Redis channel, closed after its connection dropped, moves the messages it had delivered back
to their queue. By then the connection has let go of its transport (`client` is None), so building a
client for that raises AttributeError, which is no connection error: Celery's consumer lets it
through and the worker process exits instead of reconnecting. Here the channel then gives the
messages up instead: they are still in the broker's unacked set, which sends them again after the
visibility timeout; a broker that came back empty forgot them, and the ledger's redispatch sweep
sends their jobs again.
"""

from __future__ import annotations

import logging

from kombu.transport import redis

log = logging.getLogger(__name__)


class QoS(redis.QoS):
    def restore_unacked(self, client=None):
        if client is None and self.channel.connection.client is None:
            log.warning(
                "broker connection lost with %d message(s) delivered; the broker or the ledger resends them",
                len(self._delivered),
            )
            self._delivered.clear()
            return
        super().restore_unacked(client)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
