"""bench/notifications: email delivery through real worker processes to a local SMTP server (aiosmtpd).

`python -m bench notifications [--count=10000] [--concurrency=4] [--batch=50] [--window=50] [--pipelining=1]`

Two runs of `count` emails each, queued through `notifications.queue_many` (1,000 per transaction:
one multi-row INSERT, dispatched after commit as `notification.deliver_batch` ledger jobs of
BATCH_SIZE messages on the notifications queue) and delivered by one `celery worker -Q notifications`
process with `concurrency` children (4 by default: a delivering process mostly waits on SMTP and
database round trips, so on 2 cores 4 processes keep the CPUs busy):
- clean: the server accepts everything;
- flaky: the server answers 451 to a random 20% of first attempts; those are retried with backoff,
  each retry waiting in the ledger until the promote sweep publishes it (app/devtools/sweeping.py,
  every PROMOTE_SECONDS, as beat runs it with FOLLOWUP_PROMOTE_INTERVAL).
messages/s = count / (last sent_at - start of queueing). The server counts each message by its
X-Followup-Key header: "each once" says every one arrived, none twice, and every row is `sent`.
`--batch` is outgoing.BATCH_SIZE (messages per job), `--window` the worker's notification_claim_window
(messages claimed and recorded together), `--pipelining=0` hides the server's PIPELINING (lock-step).

Uses DATABASE_URL (PostgreSQL) when set, else a SQLite file; a private redis-server.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.devtools.sweeping import sweeping
from app.domains.auth import service as auth
from app.domains.outbound import outgoing
from app.domains.outbound import service as notifications
from app.domains.outbound.models import Notification
from app.platform import clock, migrate
from app.platform.config import PROJECT_ROOT, Settings
from bench.common import bench_database, bench_redis, print_table

BATCH = 1000
PROMOTE_SECONDS = 1.0


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1])
    return default


RUNS = (("clean", 0.0), ("20% transient 451", 0.2))
COLUMNS = [
    "run",
    "queue s",
    "emails",
    "sent",
    "failed/dead",
    "451s",
    "at server",
    "duplicates",
    "each once",
    "seconds",
    "messages/s",
]


def main(flags: list[str]) -> None:
    count = _flag(flags, "count", 10_000)
    concurrency = _flag(flags, "concurrency", 4)
    outgoing.BATCH_SIZE = _flag(flags, "batch", outgoing.BATCH_SIZE)
    window = _flag(flags, "window", Settings.notification_claim_window)
    pipelining = bool(_flag(flags, "pipelining", 1))
    rows, dialect = measure(count=count, concurrency=concurrency, window=window, pipelining=pipelining)
    print_table(
        f"bench/notifications: {count:,} emails per run, 1 worker x {concurrency} processes, "
        f"batches of {outgoing.BATCH_SIZE}, claimed {window} at a time, SMTP "
        f"{'pipelined' if pipelining else 'lock-step'}, {dialect} "
        f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)",
        COLUMNS,
        rows,
    )


def measure(
    *, count: int, concurrency: int, runs=RUNS, window: int | None = None, pipelining: bool = True
) -> tuple[list[list], str]:
    """One row per run (see COLUMNS) on a fresh database, and the database's name."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    from tests.outbound.fakes import smtp_server  # the same real SMTP server the tests use

    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp, smtp_server() as (smtp, port):
        smtp.pipelining = pipelining
        workdir = Path(tmp)
        with bench_database(workdir) as db_url, bench_redis(workdir) as redis_url:
            migrate.upgrade(db_url)
            overrides = {
                "env": "test",
                "database_url": db_url,
                "redis_url": redis_url,
                "secret_key": "bench-secret-key-0123456789-abcdefghijkl",
                "phi_encryption_key": "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ=",
                "email_backend": "smtp",
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "notification_retry_base_seconds": 0.5,
                "notification_retry_max_seconds": 2.0,
            }
            app = create_app(overrides)
            env = dict(os.environ) | {
                "DATABASE_URL": db_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": overrides["secret_key"],
                "PHI_ENCRYPTION_KEY": overrides["phi_encryption_key"],
                "FOLLOWUP_ENV": "test",
                "EMAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(port),
                "FOLLOWUP_NOTIFICATION_RETRY_BASE_SECONDS": "0.5",
                "FOLLOWUP_NOTIFICATION_RETRY_MAX_SECONDS": "2.0",
                "FOLLOWUP_NOTIFICATION_CLAIM_WINDOW": str(window or Settings.notification_claim_window),
                "FOLLOWUP_VAR_DIR": str(workdir),
                "PYTHONPATH": str(PROJECT_ROOT),
            }
            with app.app_context():
                with app.extensions["followup.db"].unit_of_work() as session:
                    clinic = auth.create_clinic(
                        session=session,
                        hooks=session.database.wiring.auth,
                        name="Bench Clinic",
                        now=clock.now(),
                    )
                    session.flush()
                    clinic_id = clinic.id
                rows = []
                worker = _start_worker(env, concurrency)
                try:
                    _wait_consuming(app, "bench-notify")
                    with sweeping(app, interval=PROMOTE_SECONDS):
                        for label, fail_rate in runs:
                            smtp.fail_rate, smtp.rng = fail_rate, random.Random(42)
                            rows.append(_run(app, smtp, clinic_id, count, label, concurrency))
                finally:
                    _stop(worker)
    return rows, "PostgreSQL" if db_url.startswith("postgresql") else "SQLite"


def _run(app, smtp, clinic_id: int, count: int, label: str, concurrency: int) -> list:
    prefix = f"bench:{label}:{time.time_ns()}"
    before_keys = set(smtp.accepted)
    db = app.extensions["followup.db"]
    started = clock.now()
    for start in range(0, count, BATCH):
        with db.unit_of_work() as session:
            notifications.queue_many(
                session=session,
                channel="email",
                messages=[
                    {
                        "clinic_id": clinic_id,
                        "to_address": f"patient{i}@example.com",
                        "template": "lead_message",
                        "context": {"subject": f"Your consultation ({i})", "body": "See you on Tuesday."},
                        "dedupe_key": f"{prefix}:{i}",
                    }
                    for i in range(start, min(count, start + BATCH))
                ],
                now=clock.now(),
            )
    queued = (clock.now() - started).total_seconds()
    like = f"{prefix}:%"
    deadline = time.monotonic() + max(300, count / 20)
    while time.monotonic() < deadline:
        with db.unit_of_work() as session:
            open_count = session.scalar(
                sa.select(sa.func.count())
                .select_from(Notification)
                .where(Notification.dedupe_key.like(like), Notification.status.in_(("pending", "sending")))
            )
        if not open_count:
            break
        time.sleep(0.5)
    with db.unit_of_work() as session:
        by_status = dict(
            session.execute(
                sa.select(Notification.status, sa.func.count())
                .where(Notification.dedupe_key.like(like))
                .group_by(Notification.status)
            ).all()
        )
        last_sent = session.scalar(
            sa.select(sa.func.max(Notification.sent_at)).where(Notification.dedupe_key.like(like))
        )
    keys = {k: n for k, n in smtp.accepted.items() if k not in before_keys and k.startswith(prefix)}
    deferred = sum(n - 1 for k, n in smtp.attempts.items() if k.startswith(prefix))
    seconds = (last_sent - started).total_seconds() if last_sent else float("nan")
    duplicates = sum(n - 1 for n in keys.values())
    all_once = len(keys) == count and not duplicates and by_status.get("sent", 0) == count
    return [
        label,
        queued,
        count,
        by_status.get("sent", 0),
        by_status.get("failed", 0) + by_status.get("dead", 0),
        deferred,
        len(keys),
        duplicates,
        "yes" if all_once else "NO",
        seconds,
        count / seconds if seconds else float("nan"),
    ]


def _start_worker(env: dict, concurrency: int) -> subprocess.Popen:
    args = [
        sys.executable, "-m", "celery", "-A", "workers.main", "worker", "--loglevel=WARNING",
        f"--concurrency={concurrency}", "--hostname=bench-notify@%h", "--queues=notifications",
        "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    return subprocess.Popen(args, cwd=PROJECT_ROOT, env=env, start_new_session=True)


def _wait_consuming(app, name: str) -> None:
    sender = app.extensions["followup.dispatcher"].celery
    hostname = f"{name}@{socket.gethostname()}"
    deadline = time.monotonic() + 60
    while not sender.control.ping(destination=[hostname], timeout=0.5):
        if time.monotonic() > deadline:
            raise RuntimeError("the benchmark worker did not start")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
