"""Fixtures of the upkeep tests."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


@pytest.fixture
def fresh_heartbeats(db):
    """The heartbeats table as a database just made has it: no dead rows, no changes since its last
    ANALYZE. The suite empties tables with DELETE between tests (tests/conftest.py), which leaves
    dead rows and changes counted; the upkeep tests measure exactly those counters."""
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(sa.text("TRUNCATE heartbeats"))
        with db.engine.connect() as conn:
            conn.execute(sa.text("ANALYZE heartbeats"))
