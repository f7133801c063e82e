"""Loaded into worker processes through FOLLOWUP_PLUGINS: every bulk chunk takes
FOLLOWUP_TEST_CHUNK_SLEEP seconds longer, so a kill -9 lands while chunks are mid-transaction."""

import os
import time

from app.tasks import creation

_insert_tasks = creation.insert_tasks


def _slow_insert_tasks(**kwargs):
    created = _insert_tasks(**kwargs)
    time.sleep(float(os.environ.get("FOLLOWUP_TEST_CHUNK_SLEEP", "0")))
    return created


creation.insert_tasks = _slow_insert_tasks
