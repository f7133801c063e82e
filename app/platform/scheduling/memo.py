"""`Memo`: what the handlers of one transaction read once and use again, handed to them rather than
kept on their unit of work (issue 61).

The job runner (runner.py) makes one for each transaction it opens, one job's or a drainer's batch
of them, and hands it to each handler that names `memo` among its parameters (`takes_memo`);
the handler passes it on to what reads through it: the events processing to its consumers
(app/platform/events/consumers.py), and from there automation's lead, clinic and rule-set stamp
(app/domains/automation/processing.py) and webhooks' active subscriptions; an escalation to the
clinic's admins it tells. So the ten new leads of a drainer's batch, or its fifty escalations of a
clinic, read their clinic's rule-set stamp, subscriptions or admins once. Each reader keeps its own
part, of its own type; the memo goes with the transaction.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Memo:
    """One transaction's memo: a part for each reader, of the reader's own type (`part(T)`)."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts: dict[type, object] = {}

    def part(self, kind: type[T]) -> T:
        """The memo's part of type `kind`, made empty (`kind()`) at its first use."""
        found = self._parts.get(kind)
        if found is None:
            found = self._parts[kind] = kind()
        return found  # type: ignore[return-value]


def takes_memo(function: Callable) -> bool:
    """Whether `function` (a handler, consumer or executor, maybe bound by app/bootstrap.py) names
    `memo`."""
    return _names_memo(function.func if isinstance(function, functools.partial) else function)


@functools.cache  # a pure function of the code, asked for each step a job runs: no engine's state
def _names_memo(function: Callable) -> bool:
    return "memo" in inspect.signature(function).parameters
