"""Fairness between clinics (issue 45): clinic B's message latency while clinic A's campaign drains.

`make bench BENCH_ARGS="fairness [--campaign=5000] [--probes=50] [--relay-ms=50] [--spacing=0.3]
[--probe-delay=3] [--warm-up=2] [--stall=120] [--logs=DIR]"` with DATABASE_URL=postgresql://...

The whole Procfile stack (every process but release and flower, after the Procfile's release
migrated a fresh database), its email going to a local SMTP relay (aiosmtpd, a thread of this
process) whose handler takes `--relay-ms` a message (an asyncio sleep after DATA: each connection
waits, several connections proceed side by side). The relay records each message's arrival (DATA
received), its X-Followup-Key and its recipient. Everything else is black-box, through the HTTP API:

- Two clinics from the platform operator's API (POST /api/platform/clinics), their admins' passwords
  set with the setup token, quiet hours off (PUT /api/clinic): the run does not depend on the hour.
  Clinic B also gets a treatment coordinator (POST /api/users, with a password: no invitation email).
- Each clinic has a one-email sequence (POST /api/sequences, one step, no delay).
- Leads come from the lead import (POST /api/leads/import, automation=false: no rule fires, so the
  only emails are the bench's): A's `--campaign` leads tagged with a source campaign, and one fresh
  lead per probe for B (each probe's email goes to an address of its own: that is how the relay
  tells whose a message is).
- Clinic A's campaign is one bulk enrolment of its leads by that source campaign
  (POST /api/sequences/:id/enrollments with a filter), as a clinic sends one.
- Clinic B's probes, `--probes` of each kind, alternated, one call every `--spacing` seconds:
  (a) hand: a coordinator's email to a lead (POST /api/leads/:id/messages, transactional);
  (b) enrol: B's own one-email sequence enrolment of one lead (POST /api/sequences/:id/enrollments
  with lead_ids=[id]: the bulk lane, like A's campaign).
  A probe's latency is its arrival at the relay minus the moment its API call returned.
- baseline: the probes with nothing else running (after `--warm-up` unmeasured probes of each
  kind); then campaign: the same probes again (new leads), starting `--probe-delay` seconds after
  A's first message reached the relay.

Waits end when everything arrived; a wait with no message reaching the relay for `--stall` seconds,
or past its deadline, fails naming what is missing. Every campaign message is checked once: by its
X-Followup-Key (a key seen twice is a duplicate) and by its recipient.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.devtools.local_redis import free_port
from bench.common import bench_database, bench_redis, percentile, print_table
from bench.leads_write import server_env
from bench.stack import procfile_processes, procfile_stack, release, stack_env

PLATFORM_TOKEN = "bench-fairness-platform-token-0123456789abcdef"
PASSWORD = "bench fairness password 42"
IMPORT_ROWS = 10_000  # the lead import's most rows a request
KINDS = ("hand", "enrol")
KIND_NAMES = {"hand": "(a) hand-sent email", "enrol": "(b) own sequence enrolment"}
CAMPAIGN_DOMAIN = "campaign.example.com"
PROBE_DOMAIN = "probe.example.com"
HAND_SENT_BODY = "Hi {{ first_name }}, could you call us back?"
SETTLE = 3.0  # seconds the relay keeps listening after the last message expected


class BenchFailure(RuntimeError):
    """The run cannot go on: what was missing, or which answer was wrong."""


def _flag(flags: list[str], name: str, default: float) -> float:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return float(flag.split("=", 1)[1])
    return default


def _text_flag(flags: list[str], name: str) -> str | None:
    return next((f.split("=", 1)[1] for f in flags if f.startswith(f"--{name}=")), None)


# --- the relay --------------------------------------------------------------------------------------


@dataclass
class Arrival:
    at: float  # time.monotonic() when the message's DATA was in
    key: str | None  # X-Followup-Key
    recipients: tuple[str, ...]


class Relay:
    """An SMTP relay taking `delay` seconds a message, recording each arrival."""

    def __init__(self, delay: float):
        from tests.outbound.fakes import SmtpHandler

        self.delay = delay
        self.lock = threading.Lock()
        self.arrivals: list[Arrival] = []
        self._first: dict[str, float] = {}  # recipient -> its first arrival
        relay = self

        class Handler(SmtpHandler):  # the tests' server (PIPELINING offered), its DATA ours
            async def handle_DATA(self, server, session, envelope):
                return await relay.handle_data(envelope)

        self.handler = Handler()

    async def handle_data(self, envelope) -> str:
        from tests.outbound.fakes import followup_key

        at = time.monotonic()
        arrival = Arrival(at, followup_key(envelope.content), tuple(a.lower() for a in envelope.rcpt_tos))
        with self.lock:
            self.arrivals.append(arrival)
            for address in arrival.recipients:
                self._first.setdefault(address, at)
        await asyncio.sleep(self.delay)  # the provider's time for the message; the sender waits for it
        return "250 2.0.0 queued"

    def count(self) -> int:
        with self.lock:
            return len(self.arrivals)

    def first_arrival(self, address: str) -> float | None:
        with self.lock:
            return self._first.get(address.lower())

    def of_domain(self, domain: str) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if any(r.endswith("@" + domain) for r in a.recipients)]


@contextmanager
def smtp_relay(delay: float):
    from tests.outbound.fakes import _Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    relay = Relay(delay)
    controller = _Controller(relay.handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield relay, controller.port
    finally:
        controller.stop()


# --- the API --------------------------------------------------------------------------------------


class Api:
    """JSON over one kept-alive HTTP connection, as one user (refreshing an expired access token)."""

    def __init__(self, port: int, token: str | None = None, refresh: str | None = None):
        self.port, self.token, self.refresh_token = port, token, refresh
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body=None, *, expect=(200, 201, 202, 204), query: str = ""):
        status, answer = self._request(method, path + query, body)
        if status == 401 and self.refresh_token:
            self._refresh()
            status, answer = self._request(method, path + query, body)
        if status not in expect:
            raise BenchFailure(f"{method} {path}: {status} {json.dumps(answer)[:500]}")
        return answer

    def _request(self, method: str, path: str, body) -> tuple[int, object]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile: once more
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = raw[:200].decode(errors="replace")
        return resp.status, answer

    def _refresh(self) -> None:
        status, answer = self._request("POST", "/api/auth/refresh", {"refresh_token": self.refresh_token})
        if status != 200:
            raise BenchFailure(f"refreshing the access token: {status} {answer}")
        self.token, self.refresh_token = answer["access_token"], answer["refresh_token"]

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def login(port: int, email: str) -> Api:
    answer = Api(port).call("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
    return Api(port, answer["access_token"], answer["refresh_token"])


@dataclass
class Clinic:
    name: str
    admin: Api
    sequence_id: int
    coordinator: Api | None = None


def make_clinic(port: int, name: str, tag: str, with_coordinator: bool) -> Clinic:
    """A clinic as the platform operator creates one, its admin's password set with the setup token,
    quiet hours off, and a one-email sequence (no delay)."""
    platform = Api(port, PLATFORM_TOKEN)
    admin_email = f"admin@{tag}.bench.example.com"
    made = platform.call(
        "POST",
        "/api/platform/clinics",
        {"name": name, "timezone": "America/Chicago", "admin_email": admin_email, "admin_name": "Admin"},
    )
    Api(port).call("POST", "/api/auth/password-setup", {"token": made["setup_token"], "password": PASSWORD})
    admin = login(port, admin_email)
    admin.call("PUT", "/api/clinic", {"settings": {"quiet_hours": None}})
    sequence = admin.call(
        "POST",
        "/api/sequences",
        {
            "name": f"{name}: one email",
            "steps": [
                {
                    "delay": {"amount": 0, "unit": "minutes"},
                    "channel": "email",
                    "subject": f"News from {name}",
                    "body": "Hi {{ first_name }}, we have news for you.",
                }
            ],
        },
    )
    if not sequence.get("active", True):
        admin.call("PUT", f"/api/sequences/{sequence['id']}", {"active": True})
    clinic = Clinic(name, admin, sequence["id"])
    if with_coordinator:
        coordinator_email = f"coordinator@{tag}.bench.example.com"
        admin.call(
            "POST",
            "/api/users",
            {
                "email": coordinator_email,
                "name": "Coordinator",
                "role": "treatment_coordinator",
                "password": PASSWORD,
            },
        )
        clinic.coordinator = login(port, coordinator_email)
    return clinic


def wait_bulk_job(api: Api, job_id: int, what: str, stall: float, stack) -> dict:
    """Poll a bulk job until it ends; fails when it makes no progress for `stall` seconds."""
    last, progress_at = None, time.monotonic()
    while True:
        stack.check()
        job = api.call("GET", f"/api/bulk-jobs/{job_id}")
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        seen = (job["status"], job["done"], job["failed"])
        if seen != last:
            last, progress_at = seen, time.monotonic()
        elif time.monotonic() - progress_at > stall:
            raise BenchFailure(
                f"{what}: bulk job {job_id} made no progress for {stall:g} s "
                f"(status {job['status']}, {job['done']} done, {job['failed']} failed of {job['total']})"
            )
        time.sleep(0.25)


def import_leads(api: Api, rows: list[dict], what: str, stall: float, stack) -> dict[str, int]:
    """Import `rows` (POST /api/leads/import, automation off, up to 10,000 a request); returns each
    row's external_id -> lead id. Fails unless every row was created."""
    ids: dict[str, int] = {}
    for start in range(0, len(rows), IMPORT_ROWS):
        part = rows[start : start + IMPORT_ROWS]
        job = api.call("POST", "/api/leads/import", part, query="?automation=false")
        job = wait_bulk_job(api, job["id"], what, stall, stack)
        if job["status"] != "done" or job["done"] != len(part) or job.get("failed"):
            raise BenchFailure(f"{what}: the import ended {job['status']}: {json.dumps(job)[:500]}")
        page = 1
        while True:
            found = api.call(
                "GET", f"/api/bulk-jobs/{job['id']}/rows", query=f"?outcome=created&page={page}&page_size=100"
            )
            ids.update({row["external_id"]: row["lead_id"] for row in found})
            if len(found) < 100:
                break
            page += 1
    if len(ids) != len(rows):
        raise BenchFailure(f"{what}: {len(ids)} of {len(rows)} leads created")
    return ids


# --- probes ---------------------------------------------------------------------------------------


@dataclass
class Probe:
    kind: str
    label: str
    address: str
    lead_id: int = 0
    called_at: float = 0.0  # time.monotonic() just before the call
    returned_at: float = 0.0  # ... and when its answer was in
    bulk_job_id: int | None = None

    def latency(self, relay: Relay) -> float | None:
        arrived = relay.first_arrival(self.address)
        return None if arrived is None else arrived - self.returned_at


def probe_rows(phase: str, probes: int) -> list[dict]:
    """One fresh lead of clinic B per probe: `probes` of each kind, its address naming the probe."""
    rows = []
    for i in range(probes):
        for kind in KINDS:
            label = f"{phase}-{kind}-{i:03d}"
            rows.append(
                {
                    "external_id": label,
                    "first_name": "Probe",
                    "last_name": label.replace("-", " ").title(),
                    "email": f"{label}@{PROBE_DOMAIN}",
                    "source_campaign": f"probes-{phase}",
                }
            )
    return rows


def send_probes(clinic: Clinic, ids: dict[str, int], phase: str, probes: int, spacing: float) -> list[Probe]:
    """The phase's probes, alternating the kinds, one call every `spacing` seconds (a late call's
    successor goes at once)."""
    sent = []
    began = time.monotonic()
    for n, (i, kind) in enumerate((i, kind) for i in range(probes) for kind in KINDS):
        label = f"{phase}-{kind}-{i:03d}"
        probe = Probe(kind, label, f"{label}@{PROBE_DOMAIN}", ids[label])
        time.sleep(max(0.0, began + n * spacing - time.monotonic()))
        probe.called_at = time.monotonic()
        if kind == "hand":
            clinic.coordinator.call(
                "POST",
                f"/api/leads/{probe.lead_id}/messages",
                {
                    "channel": "email",
                    "subject": "About your visit",
                    "body": "Hi {{ first_name }}, call us back?",
                },
            )
        else:
            job = clinic.admin.call(
                "POST", f"/api/sequences/{clinic.sequence_id}/enrollments", {"lead_ids": [probe.lead_id]}
            )
            probe.bulk_job_id = job["id"]
        probe.returned_at = time.monotonic()
        sent.append(probe)
    return sent


def wait_arrivals(relay: Relay, done, describe, *, what: str, stall: float, timeout: float, stack) -> None:
    """Until `done()`; fails when no message reached the relay for `stall` seconds, or after `timeout`
    seconds, with `describe()` (what is missing) in the error."""
    deadline = time.monotonic() + timeout
    count, progress_at = relay.count(), time.monotonic()
    while not done():
        stack.check()
        now = time.monotonic()
        if relay.count() != count:
            count, progress_at = relay.count(), now
        if now - progress_at > stall:
            raise BenchFailure(f"{what}: nothing reached the relay for {stall:g} s; missing: {describe()}")
        if now > deadline:
            raise BenchFailure(f"{what}: not done within {timeout:g} s; missing: {describe()}")
        time.sleep(0.1)


def missing_probes(relay: Relay, probes: list[Probe], admin: Api | None = None) -> str:
    missing = [p for p in probes if relay.first_arrival(p.address) is None]
    shown = []
    for probe in missing[:10]:
        text = f"{probe.label} (lead {probe.lead_id}"
        if probe.bulk_job_id and admin is not None:
            try:
                job = admin.call("GET", f"/api/bulk-jobs/{probe.bulk_job_id}")
                text += f", bulk job {job['id']} {job['status']} {job.get('outcomes')}"
            except Exception as failed:  # the description must not hide the failure
                text += f", bulk job {probe.bulk_job_id}: {failed}"
        shown.append(text + ")")
    more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
    return f"{len(missing)} of {len(probes)} probes: " + ", ".join(shown) + more


# --- the run --------------------------------------------------------------------------------------


@dataclass
class Run:
    probes: dict[str, list[Probe]] = field(default_factory=dict)  # phase -> its probes
    campaign: dict = field(default_factory=dict)
    imports: list[list] = field(default_factory=list)
    processes: list[str] = field(default_factory=list)


def measure(
    *,
    campaign: int,
    probes: int,
    relay_ms: float,
    spacing: float,
    probe_delay: float,
    warm_up: int,
    stall: float,
    keep_logs: str | None,
) -> tuple[Run, Relay]:
    run = Run()
    with (
        tempfile.TemporaryDirectory(prefix="bench-fairness-") as tmp,
        bench_database(Path(tmp)) as db_url,
        bench_redis(Path(tmp)) as redis_url,
        smtp_relay(relay_ms / 1000) as (relay, smtp_port),
    ):
        workdir, port = Path(tmp), free_port()
        env = stack_env(
            {
                **server_env(db_url, redis_url),
                "EMAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp_port),
                "FOLLOWUP_PLATFORM_TOKEN": PLATFORM_TOKEN,
                "FOLLOWUP_VAR_DIR": tmp,
            },
            workdir,
            port,
        )
        logs = workdir / "logs"
        logs.mkdir()
        release(env, logs)
        names = [n for n in procfile_processes() if n not in ("release", "flower")]
        names.sort(key=lambda n: n != "web")  # the web process first: it gets PORT
        run.processes = names
        try:
            with procfile_stack(names, env, logs) as stack:
                _wait_ready(port, stack)
                _run(run, relay, stack, port, campaign, probes, spacing, probe_delay, warm_up, stall)
        except BaseException:
            for path in sorted(logs.glob("*.log")):
                print(f"\n  {path.name}, last lines:\n{_tail(path)}")
            raise
        finally:
            if keep_logs:
                shutil.copytree(logs, keep_logs, dirs_exist_ok=True)
    return run, relay


def _run(run: Run, relay: Relay, stack, port, campaign, probes, spacing, probe_delay, warm_up, stall) -> None:
    a = make_clinic(port, "Clinic A", "clinic-a", with_coordinator=False)
    b = make_clinic(port, "Clinic B", "clinic-b", with_coordinator=True)
    source_campaign = "spring-campaign"
    rows = [
        {
            "external_id": f"a{i:06d}",
            "first_name": "Parent",
            "last_name": f"Campaign {i}",
            "email": f"a{i:06d}@{CAMPAIGN_DOMAIN}",
            "source_campaign": source_campaign,
        }
        for i in range(campaign)
    ]
    started = time.monotonic()
    import_leads(a.admin, rows, "clinic A's campaign leads", stall, stack)
    seconds = time.monotonic() - started
    run.imports.append(["clinic A: campaign leads", campaign, seconds, campaign / seconds])
    b_rows = probe_rows("warm-up", warm_up) + probe_rows("baseline", probes) + probe_rows("campaign", probes)
    started = time.monotonic()
    b_ids = import_leads(b.admin, b_rows, "clinic B's probe leads", stall, stack)
    seconds = time.monotonic() - started
    run.imports.append(["clinic B: a lead per probe", len(b_rows), seconds, len(b_rows) / seconds])

    # Warm-up and baseline: clinic B alone.
    for phase, count in (("warm-up", warm_up), ("baseline", probes)):
        sent = send_probes(b, b_ids, phase, count, spacing)
        wait_arrivals(
            relay,
            lambda sent=sent: all(relay.first_arrival(p.address) is not None for p in sent),
            lambda sent=sent: missing_probes(relay, sent, b.admin),
            what=f"clinic B's {phase} probes",
            stall=stall,
            timeout=stall + 60 + len(sent) * spacing,
            stack=stack,
        )
        if phase != "warm-up":
            run.probes[phase] = sent

    # Clinic A's campaign, and clinic B's probes while it drains.
    enrol_called = time.monotonic()
    job = a.admin.call(
        "POST",
        f"/api/sequences/{a.sequence_id}/enrollments",
        {"filter": {"source_campaign": source_campaign}},
    )
    enrol_returned = time.monotonic()
    if job["total"] != campaign:
        raise BenchFailure(f"clinic A's bulk enrolment resolved {job['total']} leads, not {campaign}")

    def campaign_arrivals() -> list[Arrival]:
        return relay.of_domain(CAMPAIGN_DOMAIN)

    def campaign_missing() -> str:
        arrived = {r for x in campaign_arrivals() for r in x.recipients}
        state = a.admin.call("GET", f"/api/bulk-jobs/{job['id']}")
        return (
            f"{campaign - len(arrived)} of {campaign} campaign emails (enrolment bulk job "
            f"{state['status']}, {state['done']} done, {state['failed']} failed, {state.get('outcomes')})"
        )

    wait_arrivals(
        relay,
        lambda: bool(campaign_arrivals()),
        campaign_missing,
        what="clinic A's first campaign email",
        stall=stall,
        timeout=stall + 60,
        stack=stack,
    )
    first_at = campaign_arrivals()[0].at
    time.sleep(max(0.0, first_at + probe_delay - time.monotonic()))
    sent = send_probes(b, b_ids, "campaign", probes, spacing)
    run.probes["campaign"] = sent

    def all_arrived() -> bool:
        addresses = {r for x in campaign_arrivals() for r in x.recipients}
        return len(addresses) >= campaign and all(relay.first_arrival(p.address) is not None for p in sent)

    wait_arrivals(
        relay,
        all_arrived,
        lambda: f"{campaign_missing()}; {missing_probes(relay, sent, b.admin)}",
        what="clinic A's campaign and clinic B's probes",
        stall=stall,
        # Slower than one message at a time through the relay, three times over: surely stuck.
        timeout=600 + 3 * campaign * relay.delay,
        stack=stack,
    )
    time.sleep(SETTLE)  # a duplicate (a redelivered batch) would come soon after: give it the time
    state = a.admin.call("GET", f"/api/bulk-jobs/{job['id']}")
    arrivals = campaign_arrivals()
    keys = Counter(x.key for x in arrivals)
    recipients = Counter(r for x in arrivals for r in x.recipients)
    # The campaign drained when its last recipient first got its email (a duplicate comes later).
    last_at = max(relay.first_arrival(r) for r in recipients)
    run.campaign = {
        "emails": campaign,
        "enrol_call_ms": (enrol_returned - enrol_called) * 1000,
        "enrolled": (state.get("outcomes") or {}).get("enrolled", state["done"]),
        "arrivals": len(arrivals),
        "keys": len(keys),
        "duplicates": sum(n - 1 for k, n in keys.items() if k is not None),
        "keyless": keys.get(None, 0),
        "recipients": len(recipients),
        "first_s": arrivals[0].at - enrol_returned,
        "drain_s": last_at - enrol_returned,
        "last_at": last_at,
        "first_at": arrivals[0].at,
    }


def _wait_ready(port: int, stack, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchFailure(f"/readyz did not answer 200 within {timeout:g} s")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- the tables -----------------------------------------------------------------------------------


def latency_rows(run: Run, relay: Relay) -> list[list]:
    rows = []
    last_campaign = run.campaign.get("last_at")
    for phase in ("baseline", "campaign"):
        for kind in KINDS:
            probes = [p for p in run.probes.get(phase, []) if p.kind == kind]
            latencies = [lat for p in probes if (lat := p.latency(relay)) is not None]
            calls = [p.returned_at - p.called_at for p in probes]
            during, behind = "-", "-"
            if phase == "campaign" and last_campaign:
                during = sum(1 for p in probes if p.returned_at < last_campaign)
                behind = sum(1 for p in probes if (relay.first_arrival(p.address) or 0) > last_campaign)
            rows.append(
                [
                    "under campaign" if phase == "campaign" else phase,
                    KIND_NAMES[kind],
                    len(probes),
                    during,
                    len(latencies),
                    behind,
                    percentile(latencies, 50) * 1000,
                    percentile(latencies, 99) * 1000,
                    max(latencies, default=float("nan")) * 1000,
                    percentile(calls, 50) * 1000,
                ]
            )
    return rows


def campaign_row(run: Run) -> list:
    c = run.campaign
    once = (
        c["recipients"] == c["emails"]
        and c["keys"] == c["emails"]
        and c["arrivals"] == c["emails"]
        and not c["keyless"]
    )
    return [
        c["emails"],
        c["enrolled"],
        c["arrivals"],
        c["keys"],
        c["duplicates"],
        "yes" if once else "NO",
        c["first_s"],
        c["drain_s"],
        c["emails"] / c["drain_s"] if c["drain_s"] > 0 else float("nan"),
        c["emails"] / (c["last_at"] - c["first_at"]) if c["last_at"] > c["first_at"] else float("nan"),
    ]


def main(flags: list[str]) -> None:
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("  skipped: the whole stack runs on PostgreSQL here (set DATABASE_URL=postgresql://...)")
        return
    campaign = int(_flag(flags, "campaign", 5000))
    probes = int(_flag(flags, "probes", 50))
    relay_ms = _flag(flags, "relay-ms", 50)
    spacing = _flag(flags, "spacing", 0.3)
    run, relay = measure(
        campaign=campaign,
        probes=probes,
        relay_ms=relay_ms,
        spacing=spacing,
        probe_delay=_flag(flags, "probe-delay", 3.0),
        warm_up=int(_flag(flags, "warm-up", 2)),
        stall=_flag(flags, "stall", 120.0),
        keep_logs=_text_flag(flags, "logs"),
    )
    print_table(
        f"Clinic B's emails, arrival at the relay minus the API call's return, beside clinic A's campaign "
        f"of {campaign:,} (whole Procfile stack: {', '.join(run.processes)}; PostgreSQL; relay "
        f"{relay_ms:g} ms a message; a probe every {spacing:g} s, kinds alternated; {os.cpu_count()} CPUs)",
        [
            "phase",
            "probe",
            "sent",
            "sent while A drained",
            "arrived",
            "after A's last",
            "p50 ms",
            "p99 ms",
            "max ms",
            "API call p50 ms",
        ],
        latency_rows(run, relay),
    )
    print_table(
        "Clinic A's campaign: one bulk enrolment by source campaign into a one-email sequence; seconds "
        "from the enrolment call's return",
        [
            "emails",
            "enrolled",
            "arrived",
            "distinct keys",
            "duplicates",
            "each once",
            "first s",
            "drain s",
            "messages/s",
            "messages/s first→last",
        ],
        [campaign_row(run)],
    )
    print_table(
        "Lead import (POST /api/leads/import, automation=false)",
        ["what", "leads", "s", "leads/s"],
        run.imports,
    )
    print(
        f"\n  enrolment call {run.campaign['enrol_call_ms']:.0f} ms; load average {os.getloadavg()[0]:.1f} "
        "at the end; 'sent while A drained': probes whose call returned before the campaign's last "
        "email arrived; 'after A's last': probes that arrived after it"
    )
