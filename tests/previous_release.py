"""The previous release's Python: a venv with its own dependencies (its requirements.lock, hashes
checked, and its `dev` extra), as its image has them, for tests/test_expand_contract.py.

Installing it from the registry takes a minute or two of mostly waiting on the network and pip.
When the run will need it (PostgreSQL, the release in this clone's history, its test selected), the
suite starts the build in a thread as soon as collection ends (tests/conftest.py), and the test
waits for it then: the minute overlaps the tests that run before, rather than adding to the run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tests import sharing
from tests.workers import PROJECT_ROOT

PREVIOUS_RELEASE = PROJECT_ROOT / "migrations" / "PREVIOUS_RELEASE"
# The test that runs the previous release's code on its own dependencies.
NEEDED_BY = "tests/test_expand_contract.py::test_the_previous_releases_journeys_pass_on_the_new_schema"

_started: dict[str, Future[str]] = {}


def previous_release() -> str:
    lines = PREVIOUS_RELEASE.read_text().splitlines()
    return next(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def in_history(commit: str) -> bool:
    if shutil.which("git") is None:  # a newcomer without git (and a download without history)
        return False
    found = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True
    )
    return found.returncode == 0


def start_if_needed(node_ids: list[str], items) -> None:
    """Start building the venv in the background when the run will use it (of two processes sharing
    the run, the one that reaches the test in the first half of its walk: tests/sharing.py)."""
    commit = previous_release()
    if (
        NEEDED_BY in node_ids
        and sharing.reaches_early(NEEDED_BY, items)
        and os.environ.get("DATABASE_URL", "").startswith("postgresql")
        and in_history(commit)
    ):
        _build(commit)


def python_of_release(commit: str) -> str:
    """The venv's Python: the one started in the background, else built now."""
    return _build(commit).result()


def _build(commit: str) -> Future[str]:
    if commit not in _started:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="previous-venv")
        _started[commit] = pool.submit(_make_venv, commit)
        pool.shutdown(wait=False)
    return _started[commit]


def _make_venv(commit: str) -> str:
    where = Path(tempfile.mkdtemp(prefix="previous-venv-"))
    atexit.register(shutil.rmtree, where, ignore_errors=True)
    lock = where / "requirements.lock"
    lock.write_bytes(_file_at(commit, "requirements.lock"))
    project = tomllib.loads(_file_at(commit, "pyproject.toml").decode())["project"]
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    subprocess.run([*pip, "--require-hashes", "--no-deps", "-r", str(lock)], check=True, timeout=900)
    subprocess.run([*pip, *project["optional-dependencies"]["dev"]], check=True, timeout=900)
    return python


def _file_at(commit: str, path: str) -> bytes:
    return subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "show", f"{commit}:{path}"], capture_output=True, check=True
    ).stdout
