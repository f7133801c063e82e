"""Loaded into worker processes through FOLLOWUP_PLUGINS: every imported row takes
FOLLOWUP_TEST_ROW_SLEEP seconds longer, so a kill -9 lands while an import chunk is mid-transaction."""

import os
import time

from app.domains.intake import service

_create_lead = service.create_lead


def _slow_create_lead(**kwargs):
    intake = _create_lead(**kwargs)
    time.sleep(float(os.environ.get("FOLLOWUP_TEST_ROW_SLEEP", "0")))
    return intake


service.create_lead = _slow_create_lead
