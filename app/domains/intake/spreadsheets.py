"""The spreadsheet a clinic has, read as a table of text: a CSV in UTF-8 (with or without a BOM),
UTF-16 (Excel's "Unicode text") or Windows-1252 (Excel's CSV export on a European Windows), cells
separated by `,`, `;` or a tab; or an Excel workbook (.xlsx, its first sheet). What is not one of
these is a 422 naming `file` and saying what is wrong, before anything is stored."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime

from app.platform.errors import ValidationFailed

MAX_ROWS = 10_000
XLSX_MAGIC = b"PK\x03\x04"  # an .xlsx is a zip archive
DELIMITERS = (";", ",", "\t")
# Control characters no spreadsheet's text holds: their presence means a binary file.
BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NOT_A_SPREADSHEET = "not a spreadsheet: upload a CSV file or an Excel workbook (.xlsx)"


@dataclass(frozen=True)
class Table:
    """The first line's column names and the rows below it (blank lines left out), as text."""

    header: list[str]
    rows: list[list[str]]


def read_table(data: bytes) -> Table:
    """The table of an uploaded file, XLSX or CSV, whichever it is."""
    if not data.strip():
        raise ValidationFailed("file", "the file is empty")
    cells = _workbook_rows(data) if data.startswith(XLSX_MAGIC) else _csv_rows(_text_of(data))
    return _table(cells)


def _text_of(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = _decoded(data, "utf-16")
    elif data.startswith(b"\xef\xbb\xbf"):
        text = _decoded(data, "utf-8-sig")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decoded(data, "cp1252")  # Excel's "CSV" on Windows in Western Europe and the US
    if BINARY.search(text):
        raise ValidationFailed("file", NOT_A_SPREADSHEET)
    return text


def _decoded(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ValidationFailed("file", NOT_A_SPREADSHEET) from exc


def _delimiter(text: str) -> str:
    """The separator the header line uses most: `;` where a comma is the decimal mark, else `,`."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return max(DELIMITERS, key=first.count)


def _csv_rows(text: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text), delimiter=_delimiter(text)))
    except csv.Error as exc:
        raise ValidationFailed("file", f"not a readable CSV: {exc}") from exc


def _workbook_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook  # only an XLSX upload pays for importing it

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            return [[_cell_text(value) for value in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    except (zipfile.BadZipFile, KeyError, ValueError, IndexError, OSError) as exc:
        raise ValidationFailed("file", "not a readable Excel workbook (.xlsx)") from exc


def _cell_text(value) -> str:
    """A workbook cell as the CSV of it would hold it: a date as 2014-03-07, 4155550101 without `.0`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _table(cells: list[list[str]]) -> Table:
    lines = [[cell.strip() for cell in line] for line in cells if any(str(cell).strip() for cell in line)]
    if not lines:
        raise ValidationFailed("file", "the file is empty")
    header, rows = lines[0], lines[1:]
    if len(rows) > MAX_ROWS:
        raise ValidationFailed("file", f"at most {MAX_ROWS:,} rows per import")
    return Table(header=header, rows=rows)
