"""Test infrastructure: a real SQL database and a real Redis for the whole session.

DATABASE_URL / REDIS_URL are used when set (CI: PostgreSQL and Redis on 127.0.0.1). A PostgreSQL
server gets a database of its own for the run, dropped at the end. Otherwise: a SQLite file and a
private redis-server started here from the same binaries `make run` uses.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import redis as redis_lib
import sqlalchemy as sa
from argon2 import PasswordHasher
from celery.contrib.testing.worker import start_worker
from sqlalchemy.engine import make_url

from app import create_app
from app.bootstrap import wiring_of
from app.devtools.local_redis import LocalRedis
from app.domains.auth import tokens
from app.domains.auth.models import Clinic, User
from app.platform import clock, migrate
from app.platform.config import Settings
from app.platform.db import Base
from app.platform.roles import Role
from tests.answers import CheckedClient
from tests.databases import fresh_postgres_database
from tests.requirements import required

# The browser tests' fixtures (live_server, chromium, page), one Chromium for the whole run.
pytest_plugins = ["tests.browser", "tests.sharing"]


def pytest_collection_finish(session):
    """Start what a selected test will need and can be built meanwhile (the previous release's venv)."""
    from tests import previous_release

    previous_release.start_if_needed([item.nodeid for item in session.items], session.items)


TEST_PASSWORD = "correct horse battery staple"
# Secrets have no built-in values (app/platform/config.py): the suite brings its own, in its settings and in
# the environment its child processes (workers, gunicorn, the CLI) inherit.
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghijkl"
TEST_PHI_KEY = "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ="
os.environ["SECRET_KEY"] = TEST_SECRET_KEY
os.environ["PHI_ENCRYPTION_KEY"] = TEST_PHI_KEY


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    given = os.environ.get("DATABASE_URL")
    if "postgres" in required() and not (given or "").startswith("postgres"):
        pytest.exit("FOLLOWUP_TEST_REQUIRE names postgres but DATABASE_URL is not PostgreSQL", returncode=3)
    if not given or given.startswith("sqlite"):
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    url = make_url(given.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg")
    with fresh_postgres_database(url.render_as_string(hide_password=False), "followup_test") as fresh:
        yield fresh


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    server = LocalRedis(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def migrated_database(database_url):
    migrate.upgrade(database_url)
    return database_url


def test_settings(database_url: str, redis_url: str, **overrides) -> Settings:
    settings = Settings(
        env="test",
        secret_key=TEST_SECRET_KEY,
        database_url=database_url,
        redis_url=redis_url,
        phi_encryption_key=TEST_PHI_KEY,
        login_max_failures=3,
        login_lockout_seconds=60,
        # Tests make many requests a minute; the rate-limit test lowers it on an app of its own.
        rate_limit_per_minute=1_000_000,
        # Webhook tests post to a receiver on 127.0.0.1.
        webhook_allow_private_addresses=True,
        # Meta's Graph API is never asked from a test: a port nothing listens on refuses at once (Meta
        # unreachable), and the Instagram tests start the local stand-in (app/devtools/instagram.py).
        instagram_graph_url="http://127.0.0.1:9",
        # The tests' job kinds and event consumer, in the engine of every app built here (app/bootstrap.py).
        plugins=["tests.reliability.handlers"],
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def app(migrated_database, redis_url):
    flask_app = create_app(test_settings(migrated_database, redis_url))
    flask_app.test_client_class = CheckedClient  # every answer held to the document (tests/answers.py)
    return flask_app


# --- Celery workers in tests: Celery's own embedded worker (celery.contrib.testing.worker) ---------
# `celery_worker` runs an embedded worker (threads, in this process) against the session's real
# Redis, bound to the session's Flask app, for the length of one test: the fixture as Celery's
# celery.contrib.pytest writes it, on the project's Celery app. No pytest plugin is needed (the
# pytest-celery package's workers run in Docker, which these machines cannot run: it is not a
# dependency; docs/contributing.md). Tests that must look at the broker before a worker consumes
# start one mid-test (tests/workers.py: thread_worker, the same start_worker); kill -9 tests start
# `celery worker` processes (subprocess_worker).


@pytest.fixture
def celery_app(app):
    """The project's Celery app, bound to the session's Flask app (tasks run in its app context)."""
    from workers.celery_app import worker_app

    return worker_app(app)


@pytest.fixture(scope="session")
def celery_worker_pool():
    return "threads"


@pytest.fixture(scope="session")
def celery_worker_parameters():
    # No ping task (the project's app registers its own tasks only); a slow handler may finish.
    return {"concurrency": 2, "perform_ping_check": False, "shutdown_timeout": 30}


@pytest.fixture
def celery_worker(celery_app, celery_worker_pool, celery_worker_parameters):
    """An embedded worker consuming every queue for the test (celery.contrib.pytest's fixture)."""
    with start_worker(celery_app, pool=celery_worker_pool, **celery_worker_parameters) as worker:
        yield worker


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    return app.extensions["followup.db"]


@pytest.fixture
def wiring(app):
    """The session app's engine (app/bootstrap.py): its hooks and caches, for a test that calls a
    service needing one directly."""
    return wiring_of(app)


@pytest.fixture
def redis(redis_url):
    return redis_lib.Redis.from_url(redis_url)


def truncate_all(engine: sa.Engine, attempts: int = 5) -> None:
    """Empty every table and start every id again from 1. DELETE, not TRUNCATE: a test leaves a few
    rows, and PostgreSQL's TRUNCATE makes new files for every table it touches (with CASCADE, all of
    them) — half a second a test on a busy machine, against a few milliseconds for DELETE. The lock
    first waits, as TRUNCATE's would, for a writer still in flight. A worker's job still finishing its
    transaction (a drain a test's worker began before it stopped) can deadlock with the deletes: then
    wait and try again."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    # Last: the rows the triggers on lead_tasks add as its tasks are deleted (migration 0070; on
    # SQLite, where the deletes fire them).
    tables.sort(key=lambda name: name == "analytics_task_months")
    for attempt in range(1, attempts + 1):
        try:
            with engine.begin() as conn:
                deletes = [f"DELETE FROM {name}" for name in tables]
                if engine.dialect.name != "postgresql":
                    for statement in deletes:
                        conn.exec_driver_sql(statement)
                    return
                # One round trip for the whole reset (a fifth of the time of one a statement, every
                # test): as TRUNCATE would, wait for writers in flight; empty the tables with no
                # trigger fired (the foreign keys' checks, a row at a time, and the month counts'
                # triggers would only rework rows about to go: seconds after a test of thousands of
                # leads); restart the sequences; and send the deletes' counts to the server's
                # statistics as this session goes idle, not up to 10 s later (tests/ops measure
                # dead rows).
                conn.exec_driver_sql(
                    "; ".join([
                        f"LOCK TABLE {', '.join(tables)} IN EXCLUSIVE MODE",
                        "SET LOCAL session_replication_role = replica",
                        *deletes,
                        "SELECT setval(oid::regclass, 1, false) FROM pg_class WHERE relkind = 'S'",
                        "SELECT pg_stat_force_next_flush()",
                    ])
                )  # fmt: skip
            return
        except sa.exc.OperationalError as exc:
            if attempt == attempts or "deadlock detected" not in str(exc):
                raise
            time.sleep(0.5 * attempt)


@pytest.fixture(autouse=True)
def clean_state(request):
    """Every test starts from empty tables and an empty Redis database."""
    yield
    if "app" not in request.fixturenames:
        return
    flask_app = request.getfixturevalue("app")
    truncate_all(flask_app.extensions["followup.db"].engine)
    flask_app.extensions["followup.redis"].flushdb()


@pytest.fixture(scope="session")
def password_hash():
    """The test users' password, as an argon2id hash of light parameters. A login verifies a hash
    with the parameters written in it, so each of the suite's thousands of logins costs a few
    milliseconds instead of the production parameters' tenth of a second of both cores (a tenth of
    the suite's CPU). The production parameters are held by tests/auth/test_passwords.py; a password
    set through the API is hashed with them."""
    return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(TEST_PASSWORD)


@dataclass
class Tenant:
    """A clinic with one user per role, and ready-made auth headers."""

    app: object
    clinic: Clinic
    users: dict[str, User] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.clinic.id

    def token(self, role: str, **kwargs) -> str:
        user = self.users[role]
        settings = self.app.config["SETTINGS"]
        with self.app.extensions["followup.db"].unit_of_work() as session:
            version = session.get(User, user.id).token_version  # as login would issue it now
        grant = tokens.TokenGrant(
            version=version,
            user_id=user.id,
            clinic_id=user.clinic_id,
            kind=kwargs.get("kind", "access"),
            lifetime=kwargs.get("lifetime", timedelta(minutes=30)),
        )
        return tokens.issue(secret=settings.secret_key, grant=grant, now=kwargs.get("now", clock.now()))

    def headers(self, role: str = "clinic_admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role)}"}


@pytest.fixture
def make_tenant(app, password_hash):
    from app.domains.auth import service as auth

    counter = iter(range(1, 1000))

    def make(name: str | None = None, **clinic_fields) -> Tenant:
        n = next(counter)
        now = clock.now()
        with app.app_context(), app.extensions["followup.db"].unit_of_work() as session:
            hooks = wiring_of(app).auth
            clinic_name = name or f"Clinic {n}"
            clinic = auth.create_clinic(
                session=session, name=clinic_name, now=now, hooks=hooks, **clinic_fields
            )
            tenant = Tenant(app=app, clinic=clinic)
            for role in Role:
                user = User(
                    clinic_id=clinic.id,
                    email=f"{role.value}.{clinic.id}.{n}@example.com",
                    name=f"{role.value} {n}",
                    role=role.value,
                    password_hash=password_hash,
                    active=True,
                    out_of_office=False,
                    created_at=now,
                    updated_at=now,
                )
                session.add(user)
                tenant.users[role.value] = user
            session.flush()
        return tenant

    return make


@pytest.fixture
def tenant(make_tenant) -> Tenant:
    return make_tenant("Smile Orthodontics")
