"""No merge's conflict markers in what the repository holds: a marker left in a page of the docs once
reached main unnoticed (docs/guides/clinic.md), read by every clinic admin after it."""

from __future__ import annotations

import re
import subprocess

from tests.workers import PROJECT_ROOT

MARKER = re.compile(r"^(<{7}|>{7}) ", re.MULTILINE)


def test_no_file_holds_a_merge_conflict_marker():
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True
    ).stdout.decode().split("\0")
    offenders = []
    for name in filter(None, tracked):
        path = PROJECT_ROOT / name
        if not path.is_file() or path.suffix in {".png", ".ico", ".woff2", ".gif"}:
            continue
        text = path.read_bytes().decode("utf-8", errors="ignore")
        if MARKER.search(text):
            offenders.append(name)
    assert offenders == []
