"""bench/report's table on canned figures: ratios to the same-run reference, and which targets are met."""

from __future__ import annotations

import math

from bench.report import HEADERS, Figure, Target, table_rows

AT_MOST_100_MS = Target(100, at_most=True)
QUARTER_OF_RAW = Target(0.25, at_most=False, on_ratio=True)


def _row(figure: Figure) -> dict:
    [row] = table_rows([figure])
    return dict(zip(HEADERS, row, strict=True))


def test_a_bound_on_the_figure_is_judged_on_the_figure_not_the_ratio():
    fresh = Figure("p99 fresh", 140.0, "ms", AT_MOST_100_MS, "warm p99", 40.0)
    warm = Figure("p99 warm", 40.0, "ms", AT_MOST_100_MS)
    assert fresh.ratio == 3.5
    assert not fresh.met() and warm.met()
    assert _row(fresh)["ratio"] == "3.50" and _row(fresh)["met"] == "NO"
    assert _row(warm)["ratio"] == "-" and _row(warm)["met"] == "yes"


def test_a_bound_on_the_ratio_is_judged_against_the_reference_of_the_same_run():
    below = Figure("capture", 248.0, "/s", QUARTER_OF_RAW, "raw app", 1604.0)
    above = Figure("capture", 450.0, "/s", QUARTER_OF_RAW, "raw app", 1604.0)
    assert round(below.ratio, 2) == 0.15 and not below.met()
    assert round(above.ratio, 2) == 0.28 and above.met()
    assert _row(above)["target"] == "ratio >= 0.25"
    assert _row(below)["reference value"] == "1,604 /s"


def test_a_figure_not_measured_or_without_its_reference_is_never_met():
    assert not Figure("failed part", None, "ms", AT_MOST_100_MS).met()
    assert _row(Figure("failed part", None, "ms", AT_MOST_100_MS))["value"] == "not measured"
    no_reference = Figure("capture", 500.0, "/s", QUARTER_OF_RAW, "raw app", None)
    assert no_reference.ratio is None and not no_reference.met()
    # A lead never served within the wait is infinitely late: the p99 is not met.
    assert not Figure("p99", math.inf, "ms", AT_MOST_100_MS).met()


def test_a_run_that_broke_a_guarantee_fails_whatever_its_speed():
    twice = Figure("email", 5000.0, "/s", Target(1000, at_most=False), sound=False, note="each once: NO")
    assert not twice.met()
    assert _row(twice)["met"] == "NO (each once: NO)"
