"""A stalled broker (a server that accepts connections and never answers) costs the publish after a
commit one socket timeout, never a hang: the row goes back to pending for the promote sweep.

The stalled server is a real local TCP server; each call runs in a thread that the test waits for
generously, so a hang fails the test instead of blocking the run."""

from __future__ import annotations

import dataclasses
import socket
import threading
from contextlib import contextmanager
from datetime import timedelta

import pytest

from app.platform import clock
from app.platform.scheduling.dispatch import Dispatcher, Message
from tests.ledger import job, schedule

HANG = 60  # seconds: far beyond the 0.5 s timeout the tests set; reaching it means a hang


@contextmanager
def stalled_server():
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""
    listener = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def finishes(call) -> tuple[bool, BaseException | None]:
    """Run `call` in a thread: whether it returned (or raised) before HANG, and what it raised."""
    raised = []

    def run():
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=HANG)
    return not thread.is_alive(), (raised[0] if raised else None)


@pytest.fixture
def stalled_settings(app):
    with stalled_server() as url:
        yield dataclasses.replace(app.config["SETTINGS"], broker_url=url, redis_socket_timeout=0.5)


def test_the_publish_times_out_on_a_stalled_broker(stalled_settings):
    dispatcher = Dispatcher(stalled_settings)
    done, raised = finishes(lambda: dispatcher.publish([Message(1, "realtime")]))
    assert done, "the publish hung on a stalled broker"
    # kombu raises its OperationalError from the Redis client's TimeoutError.
    assert raised is not None and "Timeout" in type(raised.__cause__ or raised).__name__


def test_a_commit_publishing_to_a_stalled_broker_returns_and_leaves_the_row_to_the_sweep(
    app, db, tenant, stalled_settings, monkeypatch
):
    monkeypatch.setattr(
        db, "dispatcher", Dispatcher(stalled_settings)
    )  # the app's units of work publish through it
    now = clock.now()
    created = []

    def commit_a_due_job():
        with app.app_context(), db.unit_of_work() as session:
            row = schedule(
                session=session,
                kind="test.effect",
                due_at=now + timedelta(seconds=1),
                dedupe_key="stalled",
                now=now,
                clinic_id=tenant.id,
            )
            created.append(row.id)

    done, raised = finishes(commit_a_due_job)
    assert done, "the request hung after its commit, publishing to a stalled broker"
    assert raised is None  # the caller's commit stands; the failed publish is not its error
    assert job(db, created[0]).status == "pending"  # handed back: the promote sweep sends it
