"""The stream process: `GET /api/me/events`, each user's live events as Server-Sent Events.

    uvicorn --factory app.streaming:create_stream_app      (the Procfile's `stream`)

An ASGI app on one asyncio loop: an open stream is a coroutine waiting on its queue (app/streaming/hub.py),
not a thread, so one process holds thousands. What touches the database (authentication, the
replay, loading a published event) runs in Starlette's thread pool, briefly, with the app's own
services: the same token checks as every API request (app/domains/auth/stream_access.py), the same
feed (app/platform/stream/feed.py), the same PHI policy. Several processes, on several hosts, serve
the same streams: each listens to the same Redis channel, and the record is the database's.

An open stream trusts its user no longer than the API would: it reads the user again (active,
token version, role, clinic) at every heartbeat, before every batch it sends and at once when told
the user changed (a publication on the same channel), shapes each batch with the role read then,
and ends when the user may no longer read it. It ends anyway after `stream_max_seconds`; the
client resumes with Last-Event-ID.

Heartbeats (an SSE comment every `stream_heartbeat_seconds`) keep proxies from closing an idle
stream; `X-Accel-Buffering: no` keeps nginx from holding events back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import redis
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.domains.auth import stream_access
from app.domains.auth.stream_access import StreamHolder
from app.platform import clock
from app.platform.config import Settings
from app.platform.db import Database, is_unavailable
from app.platform.db.protected import use_keys
from app.platform.errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    REDIS_RETRY_AFTER_SECONDS,
    BadRequest,
    DomainError,
    error_body,
)
from app.platform.redis_clients import async_redis_client, redis_client
from app.platform.roles import Actor
from app.platform.stream import feed
from app.streaming.hub import CATCH_UP, RECHECK, Hub

PATH = "/api/me/events"
LOOPBACK = ("localhost", "127.0.0.1")
KEEP_SENT = 1000  # ids remembered per stream to send each event once (a replay and a publication overlap)
LARGEST_ID = 2**31 - 1  # stream_events.id is an INTEGER: a larger id is no event


@dataclass
class StreamState:
    """What every stream of the process shares."""

    settings: Settings
    db: Database
    hub: Hub

    @property
    def retention(self) -> timedelta:
        return timedelta(hours=self.settings.stream_retention_hours)


def create_stream_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.validate()
    # The app's own Redis client (a stream token spent), as every process builds it; the subscription
    # has one of its own on the loop, through the Sentinels too when REDIS_URL names them.
    db = Database(settings.database_url, settings=settings, redis=redis_client(settings.redis_url, settings))
    use_keys(db.engine, settings.resolved_phi_key())
    # No read timeout on the subscription (it is idle between events); Redis' health check pings it.
    timeouts = {"socket_connect_timeout": settings.redis_connect_timeout, "health_check_interval": 30}
    client = async_redis_client(settings.redis_url, settings, **timeouts)
    state = StreamState(settings=settings, db=db, hub=Hub(client))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        listening = asyncio.create_task(state.hub.run())
        try:
            yield
        finally:
            listening.cancel()
            await client.aclose()
            db.redis.close()
            db.engine.dispose()

    app = Starlette(
        routes=[
            Route(PATH, events, methods=["GET"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/readyz", ready, methods=["GET"]),
        ],
        middleware=[Middleware(CORSMiddleware, **_cors(settings))],
        lifespan=lifespan,
    )
    app.state.stream = state
    return app


def _cors(settings: Settings) -> dict:
    """Browsers on the console's origin (public_base_url) and the API's CORS origins may open a
    stream from another origin (the stream process has a port of its own unless a proxy joins them)."""
    parts = urlsplit(settings.public_base_url)
    origins = [f"{parts.scheme}://{parts.netloc}", *settings.cors_origins]
    if parts.hostname in LOOPBACK:  # a laptop's console, whichever name its browser used for it
        origins += [f"{parts.scheme}://{host}:{parts.port or 80}" for host in LOOPBACK]
    return {
        "allow_origins": origins,
        "allow_methods": ["GET"],
        "allow_headers": ["Authorization", "Last-Event-ID"],
    }


async def health(request: Request) -> JSONResponse:
    hub = request.app.state.stream.hub
    return JSONResponse({"status": "ok" if hub.connected.is_set() else "no_redis", "streams": hub.streams})


async def ready(request: Request) -> JSONResponse:
    """Whether this process can serve streams: its Redis subscription is up (through the Sentinels
    when REDIS_URL names them) and the database answers; 503 naming what is not."""
    state: StreamState = request.app.state.stream
    checks = {"redis": "ok" if state.hub.connected.is_set() else "error: no subscription to Redis"}
    checks["database"] = await run_in_threadpool(_database_check, state.db)
    ok = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


def _database_check(db: Database) -> str:
    try:
        with db.single_statement() as connection:
            connection.exec_driver_sql("SELECT 1")
        return "ok"
    except Exception as error:  # any failure means not ready; say which
        return f"error: {type(error).__name__}"


def _error(
    status: int, message: str, *, code: str | None = None, headers: dict | None = None, errors=None
) -> JSONResponse:
    body = error_body(status, message, errors, code=code)
    return JSONResponse(body, status_code=status, headers=headers)


def last_event_id(request: Request) -> int | None:
    """Where the client resumes: the Last-Event-ID header EventSource sends when it reconnects by
    itself, else `?last_event_id=` (a page that opens a new EventSource with a fresh token). None:
    a new stream. Anything but an event id (ASCII digits, within the ids' range) is a BadRequest
    naming it: `str.isdigit()` would take `²`, which `int()` refuses."""
    header = request.headers.get("last-event-id")
    name, raw = "Last-Event-ID", header
    if not header:
        name, raw = "last_event_id", request.query_params.get("last_event_id")
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit() and int(raw) <= LARGEST_ID):
        raise BadRequest(
            f"{name} must be the id of an event this stream sent (digits, at most {LARGEST_ID})",
            errors={"headers" if header else "query": {name: ["not an event id"]}},
        )
    return int(raw)


async def events(request: Request):
    """A user's live events as Server-Sent Events."""
    state: StreamState = request.app.state.stream
    try:
        resume_after = last_event_id(request)
        holder = await run_in_threadpool(
            stream_access.authenticate_stream,
            db=state.db,
            authorization=request.headers.get("authorization"),
            stream_token=request.query_params.get("token"),
            now=clock.now(),
        )
    except DomainError as error:
        return _error(error.status, error.message, code=error.code, errors=error.errors)
    except redis.RedisError:
        headers = {"Retry-After": str(REDIS_RETRY_AFTER_SECONDS)}
        return _error(503, "Redis is briefly unreachable", headers=headers)
    except Exception as error:
        if not is_unavailable(error):
            raise
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        return _error(503, "the database is briefly unreachable", headers=headers)
    return EventSourceResponse(
        _stream(state, holder, resume_after),
        ping=0,  # the stream sends its own heartbeats, each after checking its user again
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def _message(event: dict) -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps(event, default=str), event=event["type"], id=str(event["id"]))


class _Sent:
    """The ids a stream sent (each event goes once) and the newest (where a catch-up starts)."""

    def __init__(self, last: int):
        self.last, self.ids = last, set()

    def fresh(self, events: list[dict]) -> list[dict]:
        new = [event for event in events if event["id"] not in self.ids]
        for event in new:
            self.ids.add(event["id"])
            self.last = max(self.last, event["id"])
        if len(self.ids) > KEEP_SENT:
            self.ids = {i for i in self.ids if i > self.last - KEEP_SENT}
        return new


class _Revoked(Exception):
    """The stream's user may no longer read it (disabled, credentials revoked, another clinic)."""


async def _stream(state: StreamState, holder: StreamHolder, last_id: int | None):
    """Replay what followed `last_id`, then what is published, until the client goes, the user may
    no longer read the stream, or the stream has lived `stream_max_seconds`."""
    settings, loop = state.settings, asyncio.get_running_loop()
    ends_at = loop.time() + settings.stream_max_seconds
    queue = state.hub.join(holder.actor.user_id)  # before the replay: nothing published meanwhile is missed
    waiting = None  # one get() kept across heartbeats: a wait_for timing out could drop the id it got
    try:
        replay = await _read(state, _replay, holder, last_id)
        if replay.reset_to is not None:
            reset = {"id": replay.reset_to, "type": feed.RESET}
            yield ServerSentEvent(data=json.dumps(reset), event=feed.RESET, id=str(replay.reset_to))
        sent = _Sent(replay.start)
        for event in sent.fresh(replay.events):
            yield _message(event)
        while (left := ends_at - loop.time()) > 0:
            waiting = waiting or asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({waiting}, timeout=min(settings.stream_heartbeat_seconds, left))
            if not done:
                await run_in_threadpool(_allowed, state, holder)
                yield ServerSentEvent(comment="ping")
                continue
            ids, waiting = [waiting.result()], None
            while not queue.empty():
                ids.append(queue.get_nowait())
            # RECHECK needs no event read: the batch's read checks the user first, whatever it holds.
            if CATCH_UP in ids:
                events = (await _read(state, _replay, holder, sent.last)).events
            else:
                fresh = [i for i in ids if i != RECHECK and i not in sent.ids]
                events = await _read(state, _published, holder, fresh)
            for event in sent.fresh(events):
                yield _message(event)
    except _Revoked:
        return  # ended: a reconnection is refused as any request of that user would be
    except Exception as error:
        if not is_unavailable(error):
            raise
        return  # the database is away: the client resumes (Last-Event-ID) once it is back
    finally:
        if waiting is not None:
            waiting.cancel()
        state.hub.leave(holder.actor.user_id, queue)


def _allowed(state: StreamState, holder: StreamHolder) -> Actor:
    """The stream's user as they are now, else _Revoked."""
    actor = stream_access.still_allowed(db=state.db, holder=holder)
    if actor is None:
        raise _Revoked
    return actor


@dataclass
class _Shaped:
    events: list[dict]
    start: int  # the id a later catch-up reads after: a new stream's is the newest at its opening
    reset_to: int | None = None


def _replay(uow, state: StreamState, actor: Actor, last_id: int | None) -> _Shaped:
    if last_id is None:
        return _Shaped([], start=feed.newest_id(session=uow, user_id=actor.user_id))
    found = feed.since(
        session=uow, user_id=actor.user_id, last_id=last_id, now=clock.now(), retention=state.retention
    )
    start = found.reset_to if found.reset_to is not None else last_id
    return _Shaped([feed.shaped(event, actor) for event in found.events], start, found.reset_to)


def _published(uow, state: StreamState, actor: Actor, ids: list[int]) -> list[dict]:
    if not ids:
        return []
    return [feed.shaped(event, actor) for event in feed.by_ids(session=uow, user_id=actor.user_id, ids=ids)]


async def _read(state: StreamState, read, holder: StreamHolder, arg):
    """`read(uow, state, actor, arg)` on the thread pool (the loop never waits on SQL), with the
    user read again first: shaped for the role they have now, or _Revoked."""

    def work():
        actor = _allowed(state, holder)
        return state.db.run(lambda uow: read(uow, state, actor, arg))

    return await run_in_threadpool(work)
