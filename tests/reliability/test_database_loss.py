"""The database drops every connection (a failover, a restart) or cannot be reached: the API, the
workers and beat carry on once it is back, and nothing is lost or done twice meanwhile."""

from __future__ import annotations

import sqlalchemy as sa

from tests.requirements import need_postgres

TERMINATE_OTHERS = sa.text(
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


def terminate_every_connection(url: str) -> int:
    """Every other backend of the test's database ended, as a failover does; how many."""
    admin = sa.create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), poolclass=sa.pool.NullPool
    )
    try:
        with admin.connect() as connection:
            return len(connection.execute(TERMINATE_OTHERS).all())
    finally:
        admin.dispose()


def test_captures_right_after_every_connection_dropped_all_succeed(app, client, tenant, migrated_database):
    need_postgres(migrated_database, "terminating server connections needs PostgreSQL")
    headers = tenant.headers("front_desk")
    for n in range(5):  # the pool holds live connections, used a moment ago
        assert (
            client.post(
                "/api/leads", json={"first_name": f"Warm{n}", "last_name": "Up"}, headers=headers
            ).status_code
            == 201
        )
    assert terminate_every_connection(migrated_database) >= 1
    statuses = [
        client.post(
            "/api/leads", json={"first_name": f"After{n}", "last_name": "Drop"}, headers=headers
        ).status_code
        for n in range(20)
    ]
    print("statuses after the drop:", statuses)
    assert statuses == [201] * 20, statuses
    db = app.extensions["followup.db"]
    with db.engine.connect() as connection:
        names = (
            connection.execute(sa.text("SELECT first_name FROM leads WHERE last_name = 'Drop'"))
            .scalars()
            .all()
        )
    assert sorted(names) == sorted(f"After{n}" for n in range(20))
