"""A week of opening hours as the settings pages show it: a row per day (Monday first) with its
opening and closing time and an optional second period (a lunch break), read back into the API's
business_hours object (keys mon..sun). Pure: what the API's schema refuses is its to say; a refusal
naming a day ("mon: ...") is shown beside that day's row, in the day's name."""

from __future__ import annotations

import re

from app.console import wording
from app.domains.business_hours.rules import EXCEPTIONS, WEEKDAYS

PERIODS_SHOWN = 2  # a day's periods the grid offers: the hours and one after a break
_NAMED_DAY = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun): (.*)$", re.S)


def periods_of(value) -> list[list[str]]:
    if not value:
        return []
    return [value] if isinstance(value[0], str) else [list(p) for p in value]


def week_rows(hours: dict) -> list[dict]:
    """The grid's rows: the day's key and name and PERIODS_SHOWN (opens, closes) pairs, "" for none."""
    rows = []
    for day in WEEKDAYS:
        periods = periods_of(hours.get(day))[:PERIODS_SHOWN]
        periods += [["", ""]] * (PERIODS_SHOWN - len(periods))
        rows.append({"day": day, "name": wording.DAYS[day], "periods": periods})
    return rows


def field_name(day: str, index: int, edge: str) -> str:
    """A time field's name: mon_opens, mon_closes, mon_opens_2, ..."""
    return f"{day}_{edge}" + ("" if index == 0 else f"_{index + 1}")


def week_from_form(posted, prefix: str = "") -> dict:
    """The posted grid as business_hours: a day with no time given is closed (null); a period with
    one of its two times is passed on as typed, for the API's rules to refuse naming the day."""
    week: dict = {}
    for day in WEEKDAYS:
        periods = []
        for index in range(PERIODS_SHOWN):
            opens = (posted.get(prefix + field_name(day, index, "opens")) or "").strip()
            closes = (posted.get(prefix + field_name(day, index, "closes")) or "").strip()
            if opens or closes:
                periods.append([opens, closes])
        week[day] = periods or None
    return week


def with_exceptions(week: dict, current: dict) -> dict:
    """The new week keeping the dated exceptions the clinic (or provider) has."""
    if current.get(EXCEPTIONS):
        return {**week, EXCEPTIONS: current[EXCEPTIONS]}
    return week


def by_day(errors: dict[str, list[str]], field: str) -> dict[str, list[str]]:
    """A refusal of the hours (`field`: business_hours, hours) moved beside the day it names, in the
    day's name: {"business_hours": ["mon: opening ..."]} -> {"mon": ["Monday: opening ..."]}."""
    out = {k: v for k, v in errors.items() if k != field}
    for text in errors.get(field, []):
        named = _NAMED_DAY.match(text)
        if named:
            out.setdefault(named.group(1), []).append(f"{wording.DAYS[named.group(1)]}: {named.group(2)}")
        else:
            out.setdefault(field, []).append(text)
    return out
