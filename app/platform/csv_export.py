"""CSV output, the one way: every cell goes through `safe_cell`, so no export can carry a formula.

A spreadsheet opening a CSV runs a cell that starts with `=`, `+`, `-` or `@` as a formula (and tab
or carriage return lead some of them to the same parser): a lead named `=HYPERLINK("http://x",
"click")` would become a live link, or worse, in a coordinator's Excel. OWASP's advice is followed:
such a text cell is prefixed with a single quote, which the spreadsheet shows as text. Numbers are
written as they are (a negative count is data, not a formula). Every CSV this app writes uses
`csv_text` or `csv_response`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from flask import Response, stream_with_context

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
STREAM_BATCH_ROWS = 500


def safe_cell(value):
    """The value as a CSV cell that no spreadsheet evaluates: a text starting like a formula gets a `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def csv_text(rows: Iterable[Mapping], fieldnames: Sequence[str] | None = None) -> str:
    """Rows (dicts) as CSV with a header line, every cell (header included) through `safe_cell`.

    Without `fieldnames` the first row's keys are the columns; no rows and no fieldnames: empty text.
    """
    rows = list(rows)
    if fieldnames is None:
        if not rows:
            return ""
        fieldnames = list(rows[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(name) for name in fieldnames])
    for row in rows:
        writer.writerow([safe_cell(row.get(name)) for name in fieldnames])
    return out.getvalue()


def csv_response(name: str, rows: Iterable[Mapping], fieldnames: Sequence[str] | None = None) -> Response:
    """A `text/csv` attachment named `<name>.csv` (see `csv_text`)."""
    return Response(
        csv_text(rows, fieldnames),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def csv_stream(name: str, fieldnames: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A `text/csv` attachment written while `rows` (sequences in `fieldnames` order) are read, a
    batch of lines at a time: an export of any size holds one batch in memory, never the whole."""

    def lines():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([safe_cell(name) for name in fieldnames])
        for count, row in enumerate(rows, start=1):
            writer.writerow([safe_cell(value) for value in row])
            if count % STREAM_BATCH_ROWS == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
