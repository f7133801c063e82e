"""Query arguments of the analytics reports."""

from app.platform.api import RequestSchema, UTCDateTime, id_field


class ReportArgs(RequestSchema):
    start = UTCDateTime(
        data_key="from", metadata={"description": "Range start (inclusive); default to - 30 days"}
    )
    end = UTCDateTime(data_key="to", metadata={"description": "Range end (exclusive); default now"})
    coordinator_id = id_field(strict=False)
    source_id = id_field(strict=False)
