"""The fan-out inside one stream process: one Redis subscription, however many streams are open.

Every process (on every host) subscribes to the one channel the feed publishes on
(app/platform/stream/feed.py) and hands each published id to the queues of that user's open streams
here; a user with no stream open in this process costs a dictionary lookup. After a (re)connection
to Redis, every open stream is told to catch up from the table (`CATCH_UP`): whatever was published
while this process was not listening is read from there, not lost. A user's access changing
(feed.user_changed) reaches their streams as `RECHECK`: each reads the user again before anything else.
"""

from __future__ import annotations

import asyncio
import json
import logging

import redis
import redis.asyncio as aioredis

from app.platform.stream.feed import CHANNEL

log = logging.getLogger(__name__)

CATCH_UP = 0  # no event has id 0: "read what follows your last event from the table"
RECHECK = -1  # nor -1: "your user changed (role, password, status): read them again"
RECONNECT_SECONDS = 1.0


class Hub:
    def __init__(self, client: aioredis.Redis):
        self._client = client
        self._queues: dict[int, set[asyncio.Queue]] = {}
        self.connected = asyncio.Event()

    def join(self, user_id: int) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._queues.setdefault(user_id, set()).add(queue)
        return queue

    def leave(self, user_id: int, queue: asyncio.Queue) -> None:
        queues = self._queues.get(user_id, set())
        queues.discard(queue)
        if not queues:
            self._queues.pop(user_id, None)

    @property
    def streams(self) -> int:
        return sum(len(queues) for queues in self._queues.values())

    def _hand_over(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
            user_id = int(message["user_id"])
            event_id = RECHECK if message.get("changed") is True else int(message["id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # not ours: the channel is only read, never trusted for content
        for queue in self._queues.get(user_id, ()):
            queue.put_nowait(event_id)

    def _catch_up_all(self) -> None:
        for queues in self._queues.values():
            for queue in queues:
                queue.put_nowait(CATCH_UP)

    async def run(self) -> None:
        """Listen until cancelled; a lost connection is opened again (streams catch up after it)."""
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.connected.set()
                    self._catch_up_all()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._hand_over(message["data"])
            except (redis.RedisError, OSError) as error:
                self.connected.clear()
                log.warning("stream hub lost Redis", extra={"data": {"error": type(error).__name__}})
                await asyncio.sleep(RECONNECT_SECONDS)
