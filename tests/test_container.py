"""The image (Dockerfile, .dockerignore) checked without Docker: built in stages from the lock file,
run as an unprivileged user with a healthcheck on a route the web serves, and built from a context
that never holds a developer's secrets, databases, virtualenv or git history."""

from __future__ import annotations

import re
import shlex

import pytest

from tests.workers import PROJECT_ROOT


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), as (KEYWORD, arguments)."""
    text = re.sub(r"\\\n", " ", (PROJECT_ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _final_stage() -> list[tuple[str, str]]:
    steps = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def test_the_image_is_built_in_stages_from_the_lock_with_hashes():
    steps = _instructions()
    assert next(args for keyword, args in steps if keyword == "FROM").endswith(" AS builder")
    assert sum(keyword == "FROM" for keyword, _ in steps) >= 2
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert any("--require-hashes" in args and "requirements.lock" in args for args in installs)
    # The project itself adds no dependency of its own choosing.
    assert all("--require-hashes" in args or "--no-deps" in args for args in installs)
    final = _final_stage()
    assert any(keyword == "COPY" and args.startswith("--from=builder /opt/venv") for keyword, args in final)
    assert not any(keyword == "RUN" and "pip install" in args for keyword, args in final)


def test_the_image_runs_as_an_unprivileged_user():
    users = [args.split(":")[0] for keyword, args in _final_stage() if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_the_healthcheck_asks_a_route_the_web_serves_without_curl(app):
    (check,) = [args for keyword, args in _final_stage() if keyword == "HEALTHCHECK"]
    url = re.search(r"urlopen\('http://127\.0\.0\.1:8000(/\w+)'", check)
    assert "CMD" in check and "python" in check and "curl" not in check and url
    assert app.test_client().get(url[1]).status_code == 200
    cmd = [args for keyword, args in _final_stage() if keyword == "CMD"][-1]
    assert "0.0.0.0:8000" in cmd


_TOKEN = re.compile(r"(\*\*/|\*\*|\*|\?)")
_TOKENS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern decides (`!` re-includes); a pattern matching a
    directory excludes what is under it; `**` spans any directories (none too), `*` stays in one."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").strip("/")
        regex = re.compile(
            "".join(_TOKENS.get(token, re.escape(token)) for token in _TOKEN.split(body) if token)
        )
        if any(regex.fullmatch("/".join(parts[:n])) for n in range(1, len(parts) + 1)):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@pytest.mark.parametrize(
    "path",
    [
        "var/phi.key",
        "var/secret_key",
        "var/flower_auth",
        "var/demo-logins.json",
        "var/followup.db",
        "var/redis/dump.rdb",
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "followup.db",
        "app/data.sqlite3",
        "local.sqlite-wal",
        "keys/phi.key",
        "secrets/smtp_password",
        "app/__pycache__/config.cpython-311.pyc",
        ".pytest_cache/v/cache",
        "bench/results.json",
        "celerybeat-schedule.db",
    ],
)
def test_the_build_context_never_holds_secrets_databases_or_environments(path):
    assert _ignored(path, _dockerignore())


@pytest.mark.parametrize(
    "path",
    [
        "app/__init__.py",
        "workers/main.py",
        "beat_schedule.py",
        "pyproject.toml",
        "requirements.lock",
        "alembic.ini",
        "migrations/env.py",
        "app/domains/outbound/templates/x.txt",
    ],
)
def test_the_build_context_keeps_what_the_image_copies(path):
    assert not _ignored(path, _dockerignore())


def test_every_copied_source_is_in_the_build_context():
    for keyword, args in _instructions():
        if keyword == "COPY" and not args.startswith("--from="):
            for source in shlex.split(args)[:-1]:
                assert (PROJECT_ROOT / source).exists(), source
                assert not _ignored(source, _dockerignore()), source
