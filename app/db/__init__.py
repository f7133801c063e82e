"""The database layer: engine, unit of work, paging, and the fast write path (compiled statements,
batched rows). Domain code imports these names from `app.db`; the speed machinery stays in here."""

from app.db import writes
from app.db.batch import Frozen, RowBatch, allocate_ids, ids_from, insert_rows, new_id_columns
from app.db.clock import database_clock, database_now
from app.db.engine import autocommit, is_unavailable, make_engine
from app.db.paging import MAX_OFFSET, page_offset
from app.db.rows import detached_copy, insert_now, loaded, new_row, row_values
from app.db.types import MAX_ID, NAMING_CONVENTION, Base, JSONType, UTCDateTime
from app.db.unit_of_work import (
    AutocommitSession,
    Database,
    DatabaseSession,
    after_commit,
    close_request_connection,
    database_of,
    get_db,
    run_after_commit_hooks,
    unit_of_work,
)
from app.db.writes import NeedsTransaction

__all__ = [
    "MAX_ID",
    "MAX_OFFSET",
    "NAMING_CONVENTION",
    "AutocommitSession",
    "Base",
    "Database",
    "DatabaseSession",
    "Frozen",
    "JSONType",
    "NeedsTransaction",
    "RowBatch",
    "UTCDateTime",
    "after_commit",
    "allocate_ids",
    "autocommit",
    "close_request_connection",
    "database_clock",
    "database_now",
    "database_of",
    "detached_copy",
    "get_db",
    "ids_from",
    "insert_now",
    "insert_rows",
    "is_unavailable",
    "loaded",
    "make_engine",
    "new_id_columns",
    "new_row",
    "page_offset",
    "row_values",
    "run_after_commit_hooks",
    "unit_of_work",
    "writes",
]
