"""Alembic environment: the models' metadata, the URL from the app's settings (or the caller)."""

import contextlib

from alembic import context

import app.domains  # noqa: F401 - every model into Base.metadata
from app.platform.config import Settings
from app.platform.db import Base, make_engine
from app.platform.migrate import include_name

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("database_url") or Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(database_url())
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with _sqlite_foreign_keys_checked_at_the_end(connection), context.begin_transaction():
        context.run_migrations()
        _check_sqlite_foreign_keys(connection)


@contextlib.contextmanager
def _sqlite_foreign_keys_checked_at_the_end(connection):
    """Batch mode rebuilds a SQLite table (copy, DROP, rename); with foreign keys enforced, the DROP
    of a table that rows of another reference (users, leads) fails once there is data. SQLite's own
    recipe for such changes: foreign keys off around the transaction (the PRAGMA does nothing inside
    one, so it goes to the driver's connection before it begins), a foreign_key_check before commit."""
    if connection.dialect.name != "sqlite" or connection.in_transaction():
        yield
        return
    driver = connection.connection.driver_connection
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def _check_sqlite_foreign_keys(connection) -> None:
    if connection.dialect.name != "sqlite":
        return
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
    if broken is not None:
        raise RuntimeError(f"the migration left a row of {broken[0]} referring to a missing {broken[2]} row")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
