"""Loaded into worker processes through FOLLOWUP_PLUGINS: the follow-up pass, once it has released
its first lead's step and before its transaction commits, marks a file (FOLLOWUP_TEST_PASS_MARK)
and sleeps FOLLOWUP_TEST_PASS_SLEEP seconds, so a kill -9 lands in the middle of the pass."""

import os
import time

from app.domains.sequences import service

_release = service.release_paced_step


def _slow_release(**kwargs):
    step = _release(**kwargs)
    with open(os.environ["FOLLOWUP_TEST_PASS_MARK"], "a") as mark:
        mark.write(f"{kwargs['lead'].id}\n")
    time.sleep(float(os.environ.get("FOLLOWUP_TEST_PASS_SLEEP", "0")))
    return step


service.release_paced_step = _slow_release
