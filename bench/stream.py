"""bench/stream: from the commit that assigns a lead to the event on its new owner's open stream.

`python -m bench stream [--streams=1000] [--owners=50] [--rate=20] [--seconds=30] [--leads=100]`

The Procfile's own `stream` (one uvicorn process), `worker` (the realtime queue: the events'
processing) and `background` processes, on a fresh database (DATABASE_URL's PostgreSQL when set,
else SQLite) and a private Redis. `streams` users each open their stream (bearer tokens, httpx-sse on
one asyncio loop in a reader process of its own); `owners` of them receive leads, the rest stay
idle (heartbeats only). Leads are reassigned through the API (`POST /api/leads/{id}/assign`, in
this process) at `rate` a second, each to an owner it did not have; the clock starts when the API has answered
(the assignment committed) and stops when the owner's stream has read its `lead.assigned` event
(CLOCK_MONOTONIC: one clock for both processes).
The stream process' RSS is read before the streams open and with all of them open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import queue
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa
from httpx_sse import aconnect_sse

from app.devtools.local_redis import free_port
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.platform import clock
from app.platform.stream.models import StreamEvent
from bench.common import bench_app, percentile, print_table
from bench.stack import procfile_stack, stack_env

SECRET = "bench-secret-0123456789-abcdefghijklmn"
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
TARGET_P99_MS, TARGET_MB = 100, 200


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1])
    return default


def _users(app, count: int) -> tuple[int, list[int]]:
    """A clinic with an admin and `count` coordinators (ids in order)."""
    from app.domains.auth import service as auth

    now = clock.now()
    with app.extensions["followup.db"].unit_of_work() as uow:
        clinic = auth.create_clinic(session=uow, name="Bench Orthodontics", now=now)
        rows = [
            User(
                clinic_id=clinic.id, email=f"u{i}@bench.example", name=f"User {i}", password_hash="x",
                role="clinic_admin" if i == 0 else "treatment_coordinator", active=True,
                out_of_office=False, created_at=now, updated_at=now,
            )
            for i in range(count + 1)
        ]  # fmt: skip
        uow.add_all(rows)
        uow.flush()
        return clinic.id, [row.id for row in rows]


def _token(clinic_id: int, user_id: int) -> str:
    grant = tokens.TokenGrant(
        user_id=user_id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
    )
    return tokens.issue(secret=SECRET, grant=grant, now=clock.now())


def _assigned_rows(app) -> int:
    with app.extensions["followup.db"].unit_of_work() as uow:
        return uow.scalar(sa.select(sa.func.count()).where(StreamEvent.type == "lead.assigned"))


class Streams:
    """Every open stream, on one loop of a process of its own (the API calls of this one hold the GIL
    and would delay the reading); each lead.assigned read goes to `arrivals` with when it came."""

    def __init__(self, url: str, arrivals):
        self.url, self.arrivals = url, arrivals

    async def follow(self, client: httpx.AsyncClient, user_id: int, token: str, ready: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aconnect_sse(client, "GET", self.url, headers=headers) as source:
            source.response.raise_for_status()
            ready.set()
            async for event in source.aiter_sse():
                if event.event == "lead.assigned":
                    lead = json.loads(event.data)["lead"]
                    self.arrivals.put((lead["id"], user_id, time.monotonic()))


def _read_streams(url: str, tokens_of: list[tuple[int, str]], arrivals, control) -> None:
    """The reader process: open every stream, say how many, read until told to stop."""
    asyncio.run(_read_all(url, tokens_of, arrivals, control))


async def _read_all(url: str, tokens_of: list[tuple[int, str]], arrivals, control) -> None:
    streams = Streams(url, arrivals)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None), limits=limits) as client:
        tasks = []
        for user_id, token in tokens_of:
            ready = asyncio.Event()
            tasks.append(asyncio.create_task(streams.follow(client, user_id, token, ready)))
            await asyncio.wait_for(ready.wait(), timeout=60)
        arrivals.put(("opened", len(tasks), 0.0))
        await asyncio.to_thread(control.get)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _assign_at_rate(app, plan: list[tuple[int, int]], rate: int, sent: dict, headers: dict) -> None:
    """POST each (lead, owner) of `plan` on schedule, `rate` a second (several requests in flight: one
    takes longer than 1/rate on a busy machine); `sent` gets when each committed."""
    client = app.test_client()

    def assign(lead_id: int, owner: int) -> None:
        answer = client.post(f"/api/leads/{lead_id}/assign", json={"user_id": owner}, headers=headers)
        if answer.status_code == 200:
            sent[(lead_id, owner)] = time.monotonic()

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for index, (lead_id, owner) in enumerate(plan):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(assign, lead_id, owner)


def _run(app, stream_url: str, users: list[int], clinic_id: int, options: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    arrivals, control = context.Queue(), context.Queue()
    tokens_of = [(user_id, _token(clinic_id, user_id)) for user_id in users[1:]]
    reader = context.Process(target=_read_streams, args=(stream_url, tokens_of, arrivals, control))
    reader.start()
    _, opened, _ = arrivals.get(timeout=600)
    stream_rss = psutil.Process(options["stream_pid"]).memory_info().rss
    owners, leads = users[1 : 1 + options["owners"]], options["lead_ids"]
    per_lead = options["rate"] * options["seconds"] // len(leads) + 1
    plan = [(leads[i], owners[(i + j + 1) % len(owners)]) for j in range(per_lead) for i in range(len(leads))]
    plan = plan[: options["rate"] * options["seconds"]]
    sent: dict = {}
    admin = {"Authorization": f"Bearer {_token(clinic_id, users[0])}"}
    _assign_at_rate(app, plan, options["rate"], sent, admin)
    arrived: dict = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not set(sent) <= set(arrived):
        with contextlib.suppress(queue.Empty):
            lead_id, user_id, at = arrivals.get(timeout=0.5)
            arrived[(lead_id, user_id)] = at
    rss_after = psutil.Process(options["stream_pid"]).memory_info().rss
    control.put("stop")
    reader.join(timeout=60)
    latencies = [(arrived[key] - at) * 1000 for key, at in sent.items() if key in arrived]
    return {
        "opened": opened,
        "sent": len(sent),
        "latencies": latencies,
        "rss": stream_rss,
        "rss_after": rss_after,
    }


def main(flags: list[str]) -> None:
    options = {
        "streams": _flag(flags, "streams", 1000),
        "owners": _flag(flags, "owners", 50),
        "rate": _flag(flags, "rate", 20),
        "seconds": _flag(flags, "seconds", 30),
    }
    n_leads = _flag(flags, "leads", 100)
    logging.getLogger("followup.request").setLevel(logging.WARNING)  # a line per request: not the table
    with (
        bench_app(secret_key=SECRET, phi_encryption_key=PHI_KEY) as app,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = app.config["SETTINGS"]
        clinic_id, users = _users(app, options["streams"])
        port, stream_port = free_port(), free_port()
        env = stack_env(
            {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "SECRET_KEY": SECRET,
             "PHI_ENCRYPTION_KEY": PHI_KEY, "STREAM_PORT": str(stream_port), "FOLLOWUP_ENV": "bench"},
            Path(tmp), port,
        )  # fmt: skip
        with procfile_stack(["stream", "worker", "background"], env, Path(tmp)) as stack:
            stream = f"http://127.0.0.1:{stream_port}"
            _wait_subscribed(stream, stack)
            client, admin = app.test_client(), {"Authorization": f"Bearer {_token(clinic_id, users[0])}"}
            lead_ids = []
            for i in range(n_leads):
                answer = client.post(
                    "/api/leads", json={"first_name": f"Lead{i}", "last_name": "Bench"}, headers=admin
                )
                lead_ids.append(answer.get_json()["id"])
            _wait(lambda: _assigned_rows(app) >= n_leads, stack, 300)  # the captures' own events are out
            options |= {"lead_ids": lead_ids, "stream_pid": stack.started["stream"].pid}
            rss_before = psutil.Process(options["stream_pid"]).memory_info().rss
            result = _run(app, f"{stream}/api/me/events", users, clinic_id, options)
    result["rss_before"] = rss_before
    _report(result, options, app.extensions["followup.db"].dialect)


def _report(result: dict, options: dict, dialect: str) -> None:
    latencies = result["latencies"]
    p50, p99, worst = (
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies, default=float("nan")),
    )
    verdict = f"<= {TARGET_P99_MS} ms: {'met' if p99 <= TARGET_P99_MS else 'MISSED'}"
    print_table(
        f"Stream latency, commit -> owner's stream ({dialect}, one stream process)",
        ["streams open", "assignments", "received", "rate/s", "p50 ms", "p99 ms", "max ms", "target p99"],
        [[result["opened"], result["sent"], len(latencies), options["rate"], p50, p99, worst, verdict]],
    )
    mb = result["rss"] / 2**20
    print_table(
        "Stream process memory (RSS)",
        ["no stream open MB", f"{result['opened']} streams MB", "after the run MB", "target"],
        [[result["rss_before"] / 2**20, mb, result["rss_after"] / 2**20,
          f"<= {TARGET_MB} MB: {'met' if mb <= TARGET_MB else 'MISSED'}"]],
    )  # fmt: skip


def _wait_subscribed(stream: str, stack) -> None:
    def up() -> bool:
        try:
            return httpx.get(f"{stream}/healthz", timeout=2).json()["status"] == "ok"
        except (httpx.HTTPError, ValueError):
            return False

    _wait(up, stack, 60)


def _wait(predicate, stack, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        stack.check()
        if time.monotonic() > deadline:
            raise RuntimeError("the stack did not get there in time")
        time.sleep(0.2)
