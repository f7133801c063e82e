"""Fixtures of the upkeep tests."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.platform.db import autocommit


@pytest.fixture
def fresh_heartbeats(db):
    """The database as one just made has it: an empty heartbeats table, and no table with dead rows or
    changes since its last ANALYZE. The suite empties tables with DELETE between tests
    (tests/conftest.py), which leaves dead rows and changes counted in every table the earlier tests
    wrote; the upkeep tests measure exactly those counters, and a sweep that found every table stale
    would take its paced time over each before it reached the one a test watches."""
    if db.dialect != "postgresql":
        return
    with db.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE heartbeats"))
    with autocommit(db.engine).connect() as conn:  # VACUUM runs outside a transaction
        conn.execute(sa.text("VACUUM ANALYZE"))
