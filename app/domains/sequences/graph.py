"""A sequence as a graph of steps: where each step leads, and the checks made when it is saved.

A step is named by its `key` (or, without one, by its number from 1: "1", "2", ...). After it runs,
a step goes to its `next` (a key, or "end"), by default the step after it in the list. A step with
a `wait` waits, after its message or task, for one of the events it names up to its timeout, and
goes on along `on`: `on.<event>` for the event that came, `on.timeout` when none did (each by
default the next step). So paths split on what the family did, and rejoin (two paths naming the
same step) or end.

Pure logic: no I/O, no clock. Errors come by path (`{"3": {"on": {"timeout": [...]}}}`, read
steps.3.on.timeout).
"""

from __future__ import annotations

# What a step may wait for (the event each is made from: app/domains/sequences/branching.py).
WAIT_EVENTS = ("replied", "email_opened", "link_clicked", "consultation_booked", "call_logged")
TIMEOUT = "timeout"
END = "end"
# The most steps one enrollment may take (a loop through a wait may run again): then it ends.
MAX_STEPS_TAKEN = 50


def key_of(step: dict, index: int) -> str:
    return step.get("key") or str(index + 1)


def index_of(steps: list[dict], key: str) -> int | None:
    return next((i for i, step in enumerate(steps) if key_of(step, i) == key), None)


def _resolve(steps: list[dict], index: int, target: str | None) -> int | None:
    """The step `target` names (None: the end); no target is the step after `index`."""
    if target is None:
        return index + 1 if index + 1 < len(steps) else None
    if target == END:
        return None
    return index_of(steps, target)


def after(steps: list[dict], index: int, definition: dict, outcome: str | None = None) -> int | None:
    """The index of the step that follows step `index` (as `definition` says, for a wait's `outcome`:
    an event name or "timeout"), or None when the enrollment ends there."""
    if outcome is None:
        return _resolve(steps, index, definition.get("next"))
    return _resolve(steps, index, (definition.get("on") or {}).get(outcome))


def _edges(steps: list[dict], index: int) -> list[tuple[tuple[str, ...], str | None]]:
    """(where in the step the edge is written, its target) for every way out of the step."""
    step = steps[index]
    if not step.get("wait"):
        return [(("next",), step.get("next"))]
    on = step.get("on") or {}
    outcomes = [*step["wait"].get("for", ()), TIMEOUT]
    return [(("on", outcome), on.get(outcome)) for outcome in outcomes]


def problems(steps: list[dict]) -> dict:
    """Errors by step, empty when the graph can run: duplicate or unknown keys, `on` without a wait or
    naming an event not waited for, a step no path reaches, a loop with no wait on it."""
    errors: dict = {}

    def add(index: int, where: tuple[str, ...], message: str) -> None:
        node = errors.setdefault(str(index), {})
        for part in where[:-1]:
            node = node.setdefault(part, {})
        node.setdefault(where[-1], []).append(message)

    seen: dict[str, int] = {}
    for index, step in enumerate(steps):
        key = key_of(step, index)
        if key in seen:
            add(index, ("key",), f"step {seen[key] + 1} has the key {key!r} already")
        seen.setdefault(key, index)
        _check_step(step, index, add)
    if errors:
        return errors
    for index in range(len(steps)):
        for where, target in _edges(steps, index):
            if target not in (None, END) and index_of(steps, target) is None:
                add(index, where, f"no step has the key {target!r}")
    if errors:
        return errors
    _check_reachable(steps, add)
    _check_loops(steps, add)
    return errors


def _check_step(step: dict, index: int, add) -> None:
    wait, on = step.get("wait"), step.get("on")
    if on and not wait:
        add(index, ("on",), "a step without a wait goes on by `next`")
    if wait and "next" in step:
        add(index, ("next",), "a step with a wait goes on by `on`")
    for outcome in on or {}:
        if wait and outcome != TIMEOUT and outcome not in wait.get("for", ()):
            add(index, ("on", outcome), f"the step does not wait for {outcome}")


def _check_reachable(steps: list[dict], add) -> None:
    reached, todo = {0}, [0]
    while todo:
        index = todo.pop()
        for _, target in _edges(steps, index):
            following = _resolve(steps, index, target)
            if following is not None and following not in reached:
                reached.add(following)
                todo.append(following)
    for index in range(len(steps)):
        if index not in reached:
            add(index, ("key",), "unreachable: no path from the first step leads to this step")


def _check_loops(steps: list[dict], add) -> None:
    """A loop must pass through a wait (each lap then waits for the family or the timeout); a step
    without a wait has one way out, so a loop without a wait is a chain of them that comes back."""
    reported: set[int] = set()
    for start in range(len(steps)):
        chain: list[int] = []
        index: int | None = start
        while index is not None and not steps[index].get("wait") and index not in chain:
            chain.append(index)
            index = _resolve(steps, index, steps[index].get("next"))
        if index is not None and index in chain and index not in reported:
            closing = chain[-1]
            reported.update(chain)
            add(closing, ("next",), f"loops back to step {index + 1} with no wait on the way")
