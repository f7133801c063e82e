"""Choosing a coordinator. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass

ROUND_ROBIN = "round_robin"
CAPACITY = "capacity"
SOURCE = "source"


@dataclass(frozen=True)
class Candidate:
    user_id: int
    open_leads: int = 0
    max_open_leads: int | None = None

    @property
    def has_room(self) -> bool:
        return self.max_open_leads is None or self.open_leads < self.max_open_leads


def rotation(user_ids: list[int], last_user_id: int | None) -> list[int]:
    """The ids in turn order: the first id after the last one served, wrapping around.

    Ordering by id rather than by a stored index keeps the turn fair when people join or leave
    the pool between two assignments.
    """
    ordered = sorted(user_ids)
    if last_user_id is None:
        return ordered
    after = [i for i in ordered if i > last_user_id]
    return after + [i for i in ordered if i <= last_user_id]


def round_robin(user_ids: list[int], last_user_id: int | None) -> int:
    """Whose turn it is."""
    return rotation(user_ids, last_user_id)[0]


def least_loaded(candidates: list[Candidate], last_user_id: int | None) -> tuple[Candidate, bool]:
    """The candidate with room and the fewest open leads (ties in turn order); and whether all were full.

    When everyone is at their maximum the lead still needs an owner: the least loaded gets it
    and the caller says so in the assignment's reason.
    """
    by_id = {c.user_id: c for c in candidates}
    in_turn = [by_id[i] for i in rotation(list(by_id), last_user_id)]
    with_room = [c for c in in_turn if c.has_room]
    pool = with_room or in_turn
    return min(pool, key=lambda c: c.open_leads), not with_room
