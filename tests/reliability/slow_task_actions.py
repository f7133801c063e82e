"""Loaded into worker processes through FOLLOWUP_PLUGINS: every task of a bulk task action takes
FOLLOWUP_TEST_TASK_SLEEP seconds longer, so a kill -9 lands while chunks are mid-transaction."""

import os
import time

from app.domains.bulk import task_actions

_apply_action = task_actions.apply_action


def _slow_apply_action(**kwargs):
    _apply_action(**kwargs)
    time.sleep(float(os.environ.get("FOLLOWUP_TEST_TASK_SLEEP", "0")))


task_actions.apply_action = _slow_apply_action
