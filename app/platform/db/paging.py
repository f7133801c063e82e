"""Paging: a listing's page request, bounds, and one page of a listing with its total."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

T = TypeVar("T")

# flask-smorest bounds page_size but not page; an offset past any real table is simply an empty
# page, while an unbounded one overflows the database's bigint (a 500 for a silly page number).
MAX_OFFSET = 2**31


@dataclass(frozen=True)
class PageRequest:
    """Page `page` (the first is 1) of `page_size` rows, as a listing's `page` and `page_size` ask."""

    page: int
    page_size: int

    @classmethod
    def of(cls, pagination_parameters) -> PageRequest:
        """The page a view was asked for (flask-smorest's `pagination_parameters`)."""
        return cls(pagination_parameters.page, pagination_parameters.page_size)


def page_offset(page: int, page_size: int) -> int:
    """The row offset of a page, capped so a page far past the end is empty rather than an error."""
    return min((page - 1) * page_size, MAX_OFFSET)


def page_of(
    session: Session,
    model: type[T],
    conditions: Sequence,
    *,
    order_by: Sequence,
    paging: PageRequest,
    options: Sequence = (),
) -> tuple[list[T], int]:
    """One page of `model`'s rows matching `conditions` in `order_by` order, and how many match in all."""
    total = session.scalar(sa.select(sa.func.count()).select_from(model).where(*conditions))
    rows = session.scalars(
        sa.select(model)
        .options(*options)
        .where(*conditions)
        .order_by(*order_by)
        .limit(paging.page_size)
        .offset(page_offset(paging.page, paging.page_size))
    ).all()
    return list(rows), total
