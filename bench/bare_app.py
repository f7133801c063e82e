"""The bare ceiling: a WSGI app that answers each POST with one plain INSERT into the same database."""

from __future__ import annotations

import json
import os

import sqlalchemy as sa

from app.platform.db import make_engine

_engine: sa.Engine | None = None  # made in the serving process (importing this module needs no database)
_table = sa.table("bench_bare", sa.column("payload", sa.Text))


def app(environ, start_response):
    if environ["PATH_INFO"] == "/healthz":
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"status":"ok"}']
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b"{}"
    global _engine
    if _engine is None:
        _engine = make_engine(os.environ["DATABASE_URL"])
    with _engine.begin() as conn:
        conn.execute(sa.insert(_table).values(payload=body.decode()))
    start_response("201 Created", [("Content-Type", "application/json")])
    return [json.dumps({"ok": True}).encode()]


def create_table(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        pk = "SERIAL PRIMARY KEY" if engine.dialect.name == "postgresql" else "INTEGER PRIMARY KEY"
        conn.execute(sa.text(f"CREATE TABLE IF NOT EXISTS bench_bare (id {pk}, payload TEXT)"))
