"""Loaded into worker processes through FOLLOWUP_PLUGINS: a sequence's branch, once it has done its
work and before its transaction commits, marks a file (FOLLOWUP_TEST_BRANCH_MARK) and sleeps
FOLLOWUP_TEST_BRANCH_SLEEP seconds, so a kill -9 lands between the wait and the branch."""

import os
import time

from app.domains.sequences import branching

_branch = branching._branch


def _slow_branch(*args):
    _branch(*args)
    with open(os.environ["FOLLOWUP_TEST_BRANCH_MARK"], "a") as mark:
        mark.write(f"{args[1].id}\n")  # the wait's step id
    time.sleep(float(os.environ.get("FOLLOWUP_TEST_BRANCH_SLEEP", "0")))


branching._branch = _slow_branch
