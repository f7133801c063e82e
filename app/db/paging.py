"""Paging bounds."""

from __future__ import annotations

# flask-smorest bounds page_size but not page; an offset past any real table is simply an empty
# page, while an unbounded one overflows the database's bigint (a 500 for a silly page number).
MAX_OFFSET = 2**31


def page_offset(page: int, page_size: int) -> int:
    """The row offset of a page, capped so a page far past the end is empty rather than an error."""
    return min((page - 1) * page_size, MAX_OFFSET)
