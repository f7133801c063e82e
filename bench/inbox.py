"""The team inbox and one thread over 100,000 leads and 2,000,000 messages (issue 59).

`make bench BENCH_ARGS=inbox` (SQLite file) or with DATABASE_URL=postgresql://... (a fresh
database). Smaller: `BENCH_ARGS="inbox --leads=20000 --messages=400000"`. One conversation per lead
(a tenth of the leads without an owner, and some unknown senders' threads), messages in both
directions over SMS and email, read marks for part of the threads. Timed through the app (test
client): `GET /api/conversations?view=unassigned&unread=true`, `?view=mine&unread=true`, the
unfiltered first page, and a thread's first page (`GET /api/leads/{id}/conversation`).
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from app import create_app
from app.domains.auth import service as auth
from app.domains.auth import tokens
from app.domains.auth.models import User
from app.domains.conversations.models import Conversation, ConversationMessage, ConversationRead
from app.domains.leads.models import Lead, LeadSource
from app.platform import clock, migrate
from app.platform.config import Settings
from bench.common import bench_database, bench_redis, median, percentile, print_table

SECRET = "bench-secret-0123456789-abcdefghijklmn"
PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
REPEAT = 50
BATCH = 10_000
COORDINATORS = 10
TARGET_MS = 100


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(f"--{name}="):
            return int(flag.split("=", 1)[1].replace("_", ""))
    return default


def _users(session, clinic_id: int, now) -> list[int]:
    users = [
        User(
            clinic_id=clinic_id,
            email=f"b{i}@example.com",
            name=f"B{i}",
            role="clinic_admin" if i == COORDINATORS else "treatment_coordinator",
            password_hash="-",
            active=True,
            out_of_office=False,
            created_at=now,
            updated_at=now,
        )
        for i in range(COORDINATORS + 1)
    ]
    session.add_all(users)
    session.flush()
    return [user.id for user in users]


def _leads(conn, clinic_id: int, source_id: int, owners: list[int | None], now, rng) -> list[int]:
    for offset in range(0, len(owners), BATCH):
        rows = []
        for owner in owners[offset : offset + BATCH]:
            created = now - timedelta(minutes=rng.randrange(365 * 24 * 60))
            rows.append(
                {
                    "clinic_id": clinic_id,
                    "status": "ACTIVE",
                    "pipeline_stage": "new",
                    "stage_entered_at": created,
                    "first_name": "F",
                    "last_name": "L",
                    "preferred_contact": "PHONE",
                    "patient_relationship": "SELF",
                    "source_id": source_id,
                    "treatment_interest": [],
                    "assigned_to_id": owner,
                    "created_at": created,
                    "updated_at": created,
                    "created_by": "bench",
                    "updated_by": "bench",
                }
            )
        conn.execute(sa.insert(Lead), rows)
    return list(conn.scalars(sa.select(Lead.id).where(Lead.clinic_id == clinic_id).order_by(Lead.id)))


def _conversations(conn, clinic_id: int, lead_ids: list[int], unknown: int, now) -> list[int]:
    rows = [{"clinic_id": clinic_id, "lead_id": lead_id} for lead_id in lead_ids]
    rows += [{"clinic_id": clinic_id, "lead_id": None, "contact_index": f"bench-{i}"} for i in range(unknown)]
    for offset in range(0, len(rows), BATCH):
        conn.execute(
            sa.insert(Conversation),
            [
                {**row, "status": "open", "created_at": now, "updated_at": now}
                for row in rows[offset : offset + BATCH]
            ],
        )
    return list(conn.scalars(sa.select(Conversation.id).where(Conversation.clinic_id == clinic_id)))


def _messages(conn, clinic_id: int, conversation_ids: list[int], n_messages: int, now, rng) -> None:
    channels, started = ("sms", "email"), now - timedelta(days=365)
    for offset in range(0, n_messages, BATCH):
        rows = []
        for i in range(offset, min(offset + BATCH, n_messages)):
            inbound = rng.random() < 0.45
            at = started + timedelta(seconds=i * (365 * 24 * 3600 / n_messages))  # recorded in order
            rows.append(
                {
                    "clinic_id": clinic_id,
                    "conversation_id": rng.choice(conversation_ids),
                    "channel": rng.choice(channels),
                    "direction": "inbound" if inbound else "outbound",
                    "sender_ref": "inbound_webhook" if inbound else "system",
                    "body": "Hi, is Tuesday at 4 still open?",
                    "auto_reply": False,
                    "occurred_at": at,
                    "created_at": at,
                }
            )
        conn.execute(sa.insert(ConversationMessage), rows)
    # Each thread's last message, the family's last one, and the wait: what the writes keep.
    message = ConversationMessage.__table__
    last = sa.select(sa.func.max(message.c.id)).where(message.c.conversation_id == Conversation.id)
    last_in = last.where(message.c.direction == "inbound")
    conn.execute(
        sa.update(Conversation).values(
            last_message_id=last.scalar_subquery(), last_inbound_id=last_in.scalar_subquery()
        )
    )
    at = sa.select(message.c.occurred_at).where(message.c.id == Conversation.last_message_id)
    channel = sa.select(message.c.channel).where(message.c.id == Conversation.last_inbound_id)
    conn.execute(
        sa.update(Conversation).values(
            last_message_at=at.scalar_subquery(),
            last_inbound_channel=channel.scalar_subquery(),
            waiting_since=at.scalar_subquery(),
        )
    )


def _reads(conn, conversation_ids: list[int], user_ids: list[int], now, rng) -> None:
    """Each staff member has read a third of the threads up to their last message."""
    last = dict(conn.execute(sa.select(Conversation.id, Conversation.last_message_id)).all())
    for user_id in user_ids:
        chosen = [c for c in conversation_ids if last.get(c) and rng.random() < 0.33]
        for offset in range(0, len(chosen), BATCH):
            conn.execute(
                sa.insert(ConversationRead),
                [
                    {
                        "conversation_id": c,
                        "user_id": user_id,
                        "last_read_message_id": last[c],
                        "read_at": now,
                    }
                    for c in chosen[offset : offset + BATCH]
                ],
            )


def _seed(app, n_leads: int, n_messages: int) -> tuple[dict, list[int], dict]:
    db, now, rng = app.extensions["followup.db"], clock.now(), random.Random(11)
    with app.app_context(), db.unit_of_work() as session:
        clinic = auth.create_clinic(
            session=session, hooks=session.database.wiring.auth, name="Bench Ortho", now=now
        )
        user_ids = _users(session, clinic.id, now)
        source_id = session.scalar(sa.select(LeadSource.id).where(LeadSource.clinic_id == clinic.id).limit(1))
        clinic_id = clinic.id
    coordinators, timings = user_ids[:COORDINATORS], {}
    owners = [None if rng.random() < 0.1 else rng.choice(coordinators) for _ in range(n_leads)]
    with db.engine.begin() as conn:
        started = time.perf_counter()
        lead_ids = _leads(conn, clinic_id, source_id, owners, now, rng)
        conversation_ids = _conversations(conn, clinic_id, lead_ids, n_leads // 100, now)
        timings["leads + conversations"] = time.perf_counter() - started
        started = time.perf_counter()
        _messages(conn, clinic_id, conversation_ids, n_messages, now, rng)
        timings["messages"] = time.perf_counter() - started
        started = time.perf_counter()
        _reads(conn, conversation_ids, user_ids, now, rng)
        timings["read marks"] = time.perf_counter() - started
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    else:
        with db.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
    headers = {}
    for role, user_id in (("coordinator", coordinators[0]), ("admin", user_ids[-1])):
        token = tokens.issue(
            secret=SECRET,
            grant=tokens.TokenGrant(
                user_id=user_id, clinic_id=clinic_id, kind="access", lifetime=timedelta(hours=2)
            ),
            now=clock.now(),
        )
        headers[role] = {"Authorization": f"Bearer {token}"}
    return headers, lead_ids, timings


def _timed(client, url: str, headers: dict, repeat: int, params=None) -> list[float]:
    times = []
    for i in range(repeat + 1):
        started = time.perf_counter()
        resp = client.get(url(i) if callable(url) else url, query_string=params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        assert resp.status_code == 200, resp.get_json()
        if i:  # the first call warms caches
            times.append(elapsed)
    return times


def main(flags: list[str]) -> None:
    n_leads = _flag(flags, "leads", 100_000)
    n_messages = _flag(flags, "messages", 2_000_000)
    repeat = _flag(flags, "repeat", REPEAT)
    with (
        tempfile.TemporaryDirectory() as tmp,
        bench_database(Path(tmp)) as url,
        bench_redis(Path(tmp)) as redis_url,
    ):
        migrate.upgrade(url)
        settings = Settings(
            env="bench",
            database_url=url,
            redis_url=redis_url,
            secret_key=SECRET,
            phi_encryption_key=PHI_KEY,
            rate_limit_per_minute=0,
        )
        app = create_app(settings)
        dialect = app.extensions["followup.db"].dialect
        headers, lead_ids, timings = _seed(app, n_leads, n_messages)
        print_table(
            f"Bulk load ({dialect}: {n_leads:,} leads, {n_messages:,} messages)",
            ["part", "seconds"],
            [[k, v] for k, v in timings.items()],
        )
        client, rng = app.test_client(), random.Random(3)
        cases = [
            (
                "inbox unassigned + unread (admin)",
                "/api/conversations",
                "admin",
                {"view": "unassigned", "unread": "true"},
            ),
            (
                "inbox mine + unread (coordinator)",
                "/api/conversations",
                "coordinator",
                {"view": "mine", "unread": "true"},
            ),
            ("inbox all, first page (admin)", "/api/conversations", "admin", {"view": "all"}),
            ("inbox all + sms (admin)", "/api/conversations", "admin", {"view": "all", "channel": "sms"}),
        ]
        rows = []
        for label, path, who, params in cases:
            times = _timed(client, path, headers[who], repeat, params)
            rows.append([label, median(times), percentile(times, 99), f"<= {TARGET_MS}"])
        picks = [rng.choice(lead_ids) for _ in range(repeat + 1)]
        times = _timed(client, lambda i: f"/api/leads/{picks[i]}/conversation", headers["admin"], repeat)
        rows.append(
            ["a thread's first page (admin)", median(times), percentile(times, 99), f"<= {TARGET_MS}"]
        )
        print_table(
            f"Team inbox and threads through the app ({dialect}; ms, {repeat} runs each after one warm-up)",
            ["request", "p50", "p99", "target p99"],
            rows,
        )
