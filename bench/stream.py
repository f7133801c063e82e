"""bench/stream: from the commit that assigns a lead to the event on its new owner's open stream.

`python -m bench stream [--streams=1000] [--owners=50] [--rate=20] [--seconds=30] [--leads=100] [--inbound]`

The Procfile's own `stream` (one uvicorn process), `worker` (the realtime queue: the events'
processing) and `background` processes, on a fresh database (DATABASE_URL's PostgreSQL when set,
else SQLite) and a private Redis. `streams` users each open their stream (bearer tokens, httpx-sse on
one asyncio loop in a reader process of its own); `owners` of them receive leads, the rest stay
idle (heartbeats only). Leads are reassigned through the API (`POST /api/leads/{id}/assign`, in
this process) at `rate` a second, each to an owner it did not have; the clock starts when the API has answered
(the assignment committed) and stops when the owner's stream has read its `lead.assigned` event
(CLOCK_MONOTONIC: one clock for both processes).
The stream process' RSS is read before the streams open and with all of them open.

With `--inbound` (issue 59's inbox target): instead of reassignments, families text the clinic at
`rate` a second, each from the phone of a lead of its own (Twilio's signed inbound webhook, through the
API in this process); the clock starts when the webhook has answered (the message stored) and stops
when the lead's owner's stream has read its `conversation.message` event.
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
INBOUND_TARGET_P99_MS = 250
SMS_TOKEN, CLINIC_NUMBER = "bench-twilio-token", "+14155550100"
INBOUND_URL = "http://localhost/api/providers/twilio/sms"


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
        clinic = auth.create_clinic(
            session=uow, hooks=uow.database.wiring.auth, name="Bench Orthodontics", now=now
        )
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

    def __init__(self, url: str, arrivals, watch: str):
        self.url, self.arrivals, self.watch = url, arrivals, watch

    async def follow(self, client: httpx.AsyncClient, user_id: int, token: str, ready: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with aconnect_sse(client, "GET", self.url, headers=headers) as source:
            source.response.raise_for_status()
            ready.set()
            async for event in source.aiter_sse():
                if event.event == self.watch:
                    data = json.loads(event.data)
                    lead_id = data["lead"]["id"] if "lead" in data else data["lead_id"]
                    self.arrivals.put((lead_id, user_id, time.monotonic()))


def _read_streams(url: str, tokens_of: list[tuple[int, str]], arrivals, control, watch: str) -> None:
    """The reader process: open every stream, say how many, read until told to stop."""
    asyncio.run(_read_all(Streams(url, arrivals, watch), tokens_of, arrivals, control))


async def _read_all(streams: Streams, tokens_of: list[tuple[int, str]], arrivals, control) -> None:
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


def _at_rate(plan: list[tuple[int, int]], rate: int, send) -> dict:
    """`send(lead, owner)` each of `plan` on schedule, `rate` a second (several requests in flight: one
    takes longer than 1/rate on a busy machine); when each was answered with success, by (lead, owner)."""
    sent: dict = {}

    def one(lead_id: int, owner: int) -> None:
        if send(lead_id, owner):
            sent[(lead_id, owner)] = time.monotonic()

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for index, (lead_id, owner) in enumerate(plan):
            delay = start + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, lead_id, owner)
    return sent


def _assigner(app, headers: dict):
    client = app.test_client()

    def assign(lead_id: int, owner: int) -> bool:
        answer = client.post(f"/api/leads/{lead_id}/assign", json={"user_id": owner}, headers=headers)
        return answer.status_code == 200

    return assign


def _texter(app, phones: dict[int, str]):
    """A family texting the clinic, as Twilio posts it (signed with the account's token)."""
    from twilio.request_validator import RequestValidator

    client, validator = app.test_client(), RequestValidator(SMS_TOKEN)

    def text(lead_id: int, _owner: int) -> bool:
        form = {
            "MessageSid": f"SMbench{lead_id}",
            "AccountSid": "ACbench",
            "From": phones[lead_id],
            "To": CLINIC_NUMBER,
            "Body": "Do you have anything on Saturday?",
            "NumMedia": "0",
        }
        signature = validator.compute_signature(INBOUND_URL, form)
        answer = client.post(INBOUND_URL, data=form, headers={"X-Twilio-Signature": signature})
        return answer.status_code == 200

    return text


def _run(app, stream_url: str, users: list[int], clinic_id: int, options: dict) -> dict:
    context = multiprocessing.get_context("spawn")
    arrivals, control = context.Queue(), context.Queue()
    tokens_of = [(user_id, _token(clinic_id, user_id)) for user_id in users[1:]]
    watch = "conversation.message" if options["inbound"] else "lead.assigned"
    reader = context.Process(target=_read_streams, args=(stream_url, tokens_of, arrivals, control, watch))
    reader.start()
    _, opened, _ = arrivals.get(timeout=600)
    stream_rss = psutil.Process(options["stream_pid"]).memory_info().rss
    admin = {"Authorization": f"Bearer {_token(clinic_id, users[0])}"}
    if options["inbound"]:  # each lead texts once, to the owner it has
        plan = list(options["owner_of"].items())[: options["rate"] * options["seconds"]]
        send = _texter(app, options["phones"])
    else:
        plan, send = _reassignments(users, options), _assigner(app, admin)
    sent = _at_rate(plan, options["rate"], send)
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


def _reassignments(users: list[int], options: dict) -> list[tuple[int, int]]:
    """Each lead in turn to an owner it did not have, `rate` times `seconds` in all."""
    owners, leads = users[1 : 1 + options["owners"]], options["lead_ids"]
    per_lead = options["rate"] * options["seconds"] // len(leads) + 1
    plan = [(leads[i], owners[(i + j + 1) % len(owners)]) for j in range(per_lead) for i in range(len(leads))]
    return plan[: options["rate"] * options["seconds"]]


def _leads(app, clinic_id: int, admin: dict, count: int, inbound: bool) -> dict:
    """`count` leads through the API (with phones of their own, and the clinic's SMS number set, for the
    inbound run); their ids, phones and owners."""
    client, phones, owner_of = app.test_client(), {}, {}
    if inbound:
        _own_sms_number(app, clinic_id)
        answer = client.put("/api/clinic", json={"settings": {"sms_number": CLINIC_NUMBER}}, headers=admin)
        assert answer.status_code == 200, answer.get_json()
    for i in range(count):
        body = {"first_name": f"Lead{i}", "last_name": "Bench", "phone": f"+1415{2000000 + i:07d}"}
        lead = client.post("/api/leads", json=body, headers=admin).get_json()
        phones[lead["id"]], owner_of[lead["id"]] = body["phone"], lead["assigned_to_id"]
    return {"lead_ids": list(phones), "phones": phones, "owner_of": owner_of}


def _own_sms_number(app, clinic_id: int) -> None:
    """The operator gives the clinic its SMS number (as POST /api/platform/clinics/<id>/sms-senders)."""
    from app.domains.auth.senders import identity

    settings = app.config["SETTINGS"]
    with app.app_context(), app.extensions["followup.db"].unit_of_work() as uow:
        identity.assign_sms_sender(
            session=uow, clinic_id=clinic_id, sender=CLINIC_NUMBER, config=settings, now=clock.now()
        )


def main(flags: list[str]) -> None:
    options = {
        "streams": _flag(flags, "streams", 1000),
        "owners": _flag(flags, "owners", 50),
        "rate": _flag(flags, "rate", 20),
        "seconds": _flag(flags, "seconds", 30),
        "inbound": "--inbound" in flags,
    }
    n_leads = _flag(flags, "leads", 100)
    if options["inbound"]:  # one text a lead
        n_leads = max(n_leads, options["rate"] * options["seconds"])
    logging.getLogger("followup.request").setLevel(logging.WARNING)  # a line per request: not the table
    with (
        bench_app(secret_key=SECRET, phi_encryption_key=PHI_KEY, sms_token=SMS_TOKEN) as app,
        tempfile.TemporaryDirectory() as tmp,
    ):
        settings = app.config["SETTINGS"]
        clinic_id, users = _users(app, options["streams"])
        port, stream_port = free_port(), free_port()
        env = stack_env(
            {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "SECRET_KEY": SECRET,
             "PHI_ENCRYPTION_KEY": PHI_KEY, "STREAM_PORT": str(stream_port), "FOLLOWUP_ENV": "bench",
             "SMS_TOKEN": SMS_TOKEN},
            Path(tmp), port,
        )  # fmt: skip
        with procfile_stack(["stream", "worker", "background"], env, Path(tmp)) as stack:
            stream = f"http://127.0.0.1:{stream_port}"
            _wait_subscribed(stream, stack)
            admin = {"Authorization": f"Bearer {_token(clinic_id, users[0])}"}
            options |= _leads(app, clinic_id, admin, n_leads, options["inbound"])
            _wait(lambda: _assigned_rows(app) >= n_leads, stack, 300)  # the captures' own events are out
            options["stream_pid"] = stack.started["stream"].pid
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
    target = INBOUND_TARGET_P99_MS if options["inbound"] else TARGET_P99_MS
    verdict = f"<= {target} ms: {'met' if p99 <= target else 'MISSED'}"
    what = "inbound text -> owner's stream" if options["inbound"] else "commit -> owner's stream"
    print_table(
        f"Stream latency, {what} ({dialect}, one stream process)",
        [
            "streams open",
            "texts" if options["inbound"] else "assignments",
            "received",
            "rate/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "target p99",
        ],
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
