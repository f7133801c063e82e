"""Loaded into worker processes through FOLLOWUP_PLUGINS: every bulk chunk takes
FOLLOWUP_TEST_CHUNK_SLEEP seconds longer, so a kill -9 lands while chunks are mid-transaction."""

import os
import time

from app.domains.tasks import creation

_write_tasks = creation.write_tasks


def _slow_write_tasks(**kwargs):
    created = _write_tasks(**kwargs)
    if kwargs.get("bulk"):  # a bulk chunk's
        time.sleep(float(os.environ.get("FOLLOWUP_TEST_CHUNK_SLEEP", "0")))
    return created


creation.write_tasks = _slow_write_tasks
