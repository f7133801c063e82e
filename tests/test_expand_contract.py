"""Migrations follow expand/contract (docs/operations/upgrades.md): the previous release's code runs
against the schema this tree's migrations make, because during a rolling deploy it does.

The previous release is the commit in migrations/PREVIOUS_RELEASE, taken out of this clone's
history with `git archive`. Two checks:
- its models find every table and column they map, and every column they do not know of takes a
  row without it (nullable, or a server default): what a dropped or renamed column or table, or a
  NOT NULL column added without a default, breaks;
- its own tests of a user's main journeys (capture a lead, list, move a stage, a worker making the
  call task) pass on a PostgreSQL database migrated by this tree's migrations, run on its own
  dependencies (a venv from its requirements.lock, as its image has them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa

from app.platform import migrate
from tests.databases import fresh_postgres_database
from tests.previous_release import in_history, previous_release, python_of_release
from tests.requirements import need, need_postgres
from tests.workers import PROJECT_ROOT

# The previous release's own tests (its paths and names): a user's main journeys. When the release
# in PREVIOUS_RELEASE moves on, name its tests here.
JOURNEYS = (
    "tests/leads/test_leads_api.py::test_a_new_lead_starts_new_in_the_default_stage_with_an_owner_and_e164_phone",
    "tests/leads/test_leads_api.py::test_put_changes_details_renormalises_and_answers_a_new_etag",
    "tests/leads/test_list_leads.py::test_default_order_is_newest_first_and_the_list_is_paginated",
    "tests/leads/test_list_leads.py::test_filters_by_stage_status_source_and_owner",
    "tests/pipeline/test_transitions.py::test_moving_forward_sets_active_the_stage_time_history_and_a_stage_change_activity",
    "tests/automation/test_default_rules.py::test_entering_a_stage_with_a_task_template_creates_that_task",
    "tests/automation/test_default_rules.py::test_a_real_worker_makes_the_initial_call_task",
)
# Appended to the previous release's tests/conftest.py: its tests use the database this tree's
# migrations made (the release's own fixtures would make one with its own migrations).
ON_THE_NEW_SCHEMA = """

# --- tests/test_expand_contract.py: on the database the next release's migrations made ---------
@pytest.fixture(scope="session")
def database_url():
    return os.environ["FOLLOWUP_NEW_SCHEMA_DATABASE_URL"]


@pytest.fixture(scope="session")
def migrated_database(database_url):
    return database_url
"""
# Run with the previous release's code: its models' tables and columns, as JSON on the last line.
MAPPED = """
import importlib, json, os
import app.domains  # every model into the metadata (as its migrations/env.py does)
# Its own layout's module: this venv's editable install would lend it this tree's app.platform.db.
layout = "app.platform.db" if os.path.isdir("app/platform") else "app.db"
db = importlib.import_module(layout)
assert os.path.abspath(db.__file__).startswith(os.getcwd()), db.__file__
print(json.dumps({t.name: sorted(c.name for c in t.columns) for t in db.Base.metadata.tables.values()}))
"""


@pytest.fixture(scope="module")
def previous_tree(tmp_path_factory) -> Path:
    """The previous release's files in a directory of their own."""
    commit = previous_release()
    # CI clones the whole history: there the check must run (it is required with PostgreSQL).
    need(
        "postgres",
        in_history(commit),
        f"the previous release {commit[:12]} (migrations/PREVIOUS_RELEASE) is not in this clone's "
        "history (a shallow clone? `git fetch --unshallow`; or no git)",
    )
    tree = tmp_path_factory.mktemp("previous-release")
    archive = tree / "release.tar"
    subprocess.run(["git", "-C", str(PROJECT_ROOT), "archive", "--output", str(archive), commit], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    archive.unlink()
    return tree


def _previous_env(tree: Path, **extra: str) -> dict[str, str]:
    """The environment the previous release's code runs in, its code first on the path."""
    env = {k: v for k, v in os.environ.items() if k != "FOLLOWUP_TEST_REQUIRE"}  # its own names
    return {**env, "PYTHONPATH": str(tree), **extra}


@pytest.fixture(scope="module")
def previous_python() -> str:
    """A Python with the previous release's own dependencies, as its image installs them (its
    requirements.lock, hashes checked), and its test tools (its `dev` extra): during a rolling deploy
    the release still serving runs on its own libraries, not on this tree's (which may have moved a
    major version, as SQLAlchemy 2.0 to 2.1 did). Built in the background since collection ended
    (tests/previous_release.py)."""
    return python_of_release(previous_release())


@pytest.fixture
def new_schema(database_url, tmp_path):
    """A database migrated to this tree's head: PostgreSQL of its own, else a SQLite file."""
    if not database_url.startswith("postgresql"):
        url = f"sqlite:///{tmp_path / 'new-schema.db'}"
        migrate.upgrade(url)
        yield url
        return
    with fresh_postgres_database(database_url, "followup_expand") as url:
        migrate.upgrade(url)
        yield url


def test_the_previous_releases_models_find_every_column_they_map_and_can_leave_out_the_new_ones(
    previous_tree, new_schema
):
    mapped = subprocess.run(
        [sys.executable, "-c", MAPPED],
        cwd=previous_tree,
        env=_previous_env(previous_tree),
        capture_output=True,
        text=True,
        check=True,
    )
    old_models = json.loads(mapped.stdout.strip().splitlines()[-1])
    assert "leads" in old_models and "scheduled_jobs" in old_models  # the release's own models, read

    engine = sa.create_engine(new_schema)
    try:
        schema = sa.inspect(engine)
        tables = set(schema.get_table_names())
        missing, unwritable = [], []
        for table, columns in sorted(old_models.items()):
            if table not in tables:
                missing.append(table)
                continue
            found = {column["name"]: column for column in schema.get_columns(table)}
            missing += [f"{table}.{name}" for name in columns if name not in found]
            unwritable += [
                f"{table}.{name}"
                for name, column in found.items()
                if name not in columns and not _fills_itself(column)
            ]
    finally:
        engine.dispose()
    assert missing == [], "dropped or renamed while the previous release still uses them (contract later)"
    assert unwritable == [], "NOT NULL without a default: the previous release's inserts would fail"


def _fills_itself(column: dict) -> bool:
    """A row inserted without this column gets a value (or NULL) all the same."""
    return bool(
        column["nullable"]
        or column.get("default") is not None
        or column.get("computed")
        or column.get("identity")
    )


def test_the_previous_releases_journeys_pass_on_the_new_schema(previous_tree, new_schema, redis_url, request):
    need_postgres(new_schema, "the previous release's journeys run on a PostgreSQL database of their own")
    python = request.getfixturevalue("previous_python")  # only here: it installs from the registry
    conftest = previous_tree / "tests" / "conftest.py"
    if ON_THE_NEW_SCHEMA not in conftest.read_text():
        conftest.write_text(conftest.read_text() + ON_THE_NEW_SCHEMA)
    env = _previous_env(
        previous_tree,
        FOLLOWUP_NEW_SCHEMA_DATABASE_URL=new_schema,
        DATABASE_URL=new_schema,
        REDIS_URL=_other_database(redis_url, 9),  # its flushes leave this run's Redis database alone
    )
    run = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *JOURNEYS],
        cwd=previous_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert f"{len(JOURNEYS)} passed" in run.stdout  # every journey ran: none skipped or left out


def _other_database(redis_url: str, number: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{number}"))
