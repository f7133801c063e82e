"""Beat's promote and redispatch sweeps, called in a loop from a thread of this process: for tests
and benchmarks that run real workers but no beat of their own."""

from __future__ import annotations

import threading
from contextlib import contextmanager

from app.platform import clock
from app.platform.scheduling import sweeps


@contextmanager
def sweeping(app, interval: float = 0.5):
    """The sweeps of `app`'s ledger every `interval` seconds until the block ends."""
    stop = threading.Event()
    db = app.extensions["followup.db"]

    def loop():
        with app.app_context():
            while not stop.is_set():
                sweeps.promote_due(db=db, now=clock.now())
                sweeps.redispatch_stale(db=db, now=clock.now())
                stop.wait(interval)

    thread = threading.Thread(target=loop, name="sweeper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
