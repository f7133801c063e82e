"""The raw ceiling: a Flask app that answers each POST with one autocommit INSERT ... RETURNING id.

No SQLAlchemy, no transaction block, no authentication: Flask, the JSON body, one statement on a
connection kept per thread (psycopg on PostgreSQL, the sqlite3 module on SQLite). The least a web
app that stores a posted record can do, so capture is compared with what the stack itself costs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading

from flask import Flask, jsonify, request

app = Flask(__name__)
_local = threading.local()

TABLE = "bench_raw"


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/insert")
def insert():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {"error": "a JSON object"}, 400
    new_id = (
        _connection()
        .execute(
            f"INSERT INTO {TABLE} (payload) VALUES ({_marker()}) RETURNING id",
            (json.dumps(body),),
        )
        .fetchone()[0]
    )
    return jsonify(id=new_id), 201


def _connection():
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = connect(os.environ["DATABASE_URL"])
    return conn


def _marker() -> str:
    return "?" if os.environ["DATABASE_URL"].startswith("sqlite") else "%s"


def connect(url: str):
    """An autocommit connection to the benchmark's database (a SQLAlchemy-style URL)."""
    if url.startswith("sqlite"):
        return sqlite3.connect(url.split("///", 1)[1], isolation_level=None, check_same_thread=False)
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)


def create_table(url: str) -> None:
    pk = "INTEGER PRIMARY KEY" if url.startswith("sqlite") else "BIGSERIAL PRIMARY KEY"
    conn = connect(url)
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id {pk}, payload TEXT)")
    finally:
        conn.close()
