"""The database layer: engine, the unit of work, paging, and the fast write path (compiled
statements, reserved ids, bulk loads). Domain code imports these names from `app.platform.db`; the speed
machinery stays in here."""

from app.platform.db.among import among
from app.platform.db.batch import Frozen, allocate_ids, insert_rows
from app.platform.db.clock import database_now
from app.platform.db.counts import add_to_rows, insert_absent
from app.platform.db.database import Database
from app.platform.db.engine import autocommit, is_unavailable, make_engine
from app.platform.db.paging import MAX_OFFSET, PageRequest, page_of, page_offset
from app.platform.db.reports import begin_report_reads, plan_for_reports, read_report
from app.platform.db.rows import detached_copy, loaded, new_row, row_values
from app.platform.db.together import read_later, read_together
from app.platform.db.types import MAX_ID, NAMING_CONVENTION, Base, JSONType, UTCDateTime
from app.platform.db.uow import UnitOfWork
from app.platform.db.writes import insert_now, insert_once

__all__ = [
    "MAX_ID",
    "MAX_OFFSET",
    "NAMING_CONVENTION",
    "Base",
    "Database",
    "Frozen",
    "JSONType",
    "PageRequest",
    "UTCDateTime",
    "UnitOfWork",
    "add_to_rows",
    "allocate_ids",
    "among",
    "autocommit",
    "begin_report_reads",
    "database_now",
    "detached_copy",
    "insert_absent",
    "insert_now",
    "insert_once",
    "insert_rows",
    "is_unavailable",
    "loaded",
    "make_engine",
    "new_row",
    "page_of",
    "page_offset",
    "plan_for_reports",
    "read_later",
    "read_report",
    "read_together",
    "row_values",
]
