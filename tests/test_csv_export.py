"""The one CSV writer: formula-looking text cells become text; numbers and plain text stay as they are."""

import csv
import io

import pytest

from app.platform.csv_export import csv_text, safe_cell


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\r=1", '=HYPERLINK("x")'])
def test_formula_looking_text_is_quoted(cell):
    assert safe_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["Jane", "", " =not first", -3, 2.5, None, "a=b"])
def test_other_cells_are_unchanged(cell):
    assert safe_cell(cell) == cell


def test_csv_text_quotes_every_cell_and_the_header():
    text = csv_text([{"=name": "=cmd|' /C calc'!A0", "count": -4}])
    assert list(csv.reader(io.StringIO(text))) == [["'=name", "count"], ["'=cmd|' /C calc'!A0", "-4"]]


def test_no_rows_without_columns_is_empty():
    assert csv_text([]) == ""
