"""A listing's page request: which page, and how many rows a page holds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageRequest:
    """Page `page` (the first is 1) of `page_size` rows, as a listing's `page` and `page_size` ask."""

    page: int
    page_size: int

    @classmethod
    def of(cls, pagination_parameters) -> PageRequest:
        """The page a view was asked for (flask-smorest's `pagination_parameters`)."""
        return cls(pagination_parameters.page, pagination_parameters.page_size)
