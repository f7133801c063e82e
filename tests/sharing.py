"""Two pytest processes sharing one run of the suite, file by file (CI's two cores: `.ci/run`).

With FOLLOWUP_TEST_SHARE=<folder>:<forward|backward>, a process runs a test file only once it has
claimed it, by making the file's entry in the shared folder (`mkdir`: exactly one process can make
it). One process walks the files from the first, the other from the last, so the two meet where
the work divides evenly, however long each file takes, and whenever the second one starts (CI starts
it once the newcomer's run ends and a core is free). Each claim records the process that ran it;
`python -m tests.sharing <folder>` then checks that every collected file was claimed: no file lost
between the two. Without the variable, pytest runs its own loop: every selected test, in order.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

COLLECTED = "collected.txt"  # every file this run selected, one a line (the same in both processes)
CLAIMS = "claims"


def _share() -> tuple[Path, str] | None:
    given = os.environ.get("FOLLOWUP_TEST_SHARE")
    if not given:
        return None
    folder, _, direction = given.rpartition(":")
    if direction not in ("forward", "backward") or not folder:
        raise pytest.UsageError("FOLLOWUP_TEST_SHARE is <folder>:forward or <folder>:backward")
    return Path(folder), direction


def _files(items: list[pytest.Item]) -> list[list[pytest.Item]]:
    """The selected tests, grouped by file in the order collected."""
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        groups.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    return list(groups.values())


def _path(group: list[pytest.Item]) -> str:
    return group[0].nodeid.split("::", 1)[0]


def _entry(folder: Path, path: str) -> Path:
    return folder / CLAIMS / hashlib.sha1(path.encode()).hexdigest()


def _claimed(folder: Path, files: list[list[pytest.Item]], name: str) -> Iterator[list[pytest.Item]]:
    """The files this process claims, in its order: each one the other process has not taken yet."""
    for group in files:
        entry = _entry(folder, _path(group))
        try:
            entry.mkdir()
        except FileExistsError:
            continue
        (entry / "by").write_text(name)
        yield group


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session):
    share = _share()
    if share is None or session.config.option.collectonly:
        return None  # pytest's own loop
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    folder, direction = share
    (folder / CLAIMS).mkdir(parents=True, exist_ok=True)
    files = _files(session.items)
    (folder / f"{COLLECTED}.{direction}").write_text(
        "".join(f"{g[0].nodeid.split('::')[0]}\n" for g in files)
    )
    ordered = files if direction == "forward" else files[::-1]
    claimed = _claimed(folder, ordered, direction)
    group = next(claimed, None)
    while group is not None:
        following = None
        for index, item in enumerate(group):
            if index + 1 < len(group):
                nextitem = group[index + 1]
            else:  # the file's last test: the next file is claimed now, so fixtures end rightly
                following = next(claimed, None)
                nextitem = following[0] if following else None
            item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldfail:
                raise session.Failed(session.shouldfail)
            if session.shouldstop:
                raise session.Interrupted(session.shouldstop)
        group = following
    return True


def reaches_early(nodeid: str, items: list[pytest.Item]) -> bool:
    """Whether this process walks to `nodeid`'s file in the first half of its walk (always, alone)."""
    share = _share()
    if share is None:
        return True
    paths = [_path(group) for group in _files(items)]
    path = nodeid.split("::", 1)[0]
    if path not in paths:
        return False
    position = paths.index(path) if share[1] == "forward" else len(paths) - 1 - paths.index(path)
    return position < len(paths) / 2


def unclaimed(folder: Path) -> list[str]:
    """The files both processes selected that neither ran."""
    selected = set()
    for listing in folder.glob(f"{COLLECTED}.*"):
        selected |= set(listing.read_text().split())
    return sorted(path for path in selected if not (_entry(folder, path) / "by").exists())


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    by = [entry.read_text() for entry in (folder / CLAIMS).glob("*/by")]
    print(f"shared run: {by.count('forward')} files forward, {by.count('backward')} backward")
    missed = unclaimed(folder)
    if missed:
        print("never run:", *missed, sep="\n  ")
        sys.exit(1)
