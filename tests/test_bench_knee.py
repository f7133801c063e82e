"""`bench automation --knee`: the rate at which the stack stops keeping up, read off its phases."""

import pytest

from bench.automation import knee, knee_flag


def test_the_knee_is_the_lowest_rate_whose_p99_is_over_the_target():
    measured = [(60, 140.0), (20, 30.0), (40, 95.0), (80, 900.0)]  # in any order

    assert knee(measured, target_ms=100) == 60


def test_no_knee_when_every_rate_tried_keeps_within_the_target():
    assert knee([(20, 30.0), (40, 100.0)], target_ms=100) is None


def test_a_rate_at_exactly_the_target_has_not_crossed_it():
    assert knee([(20, 100.0), (40, 100.1)], target_ms=100) == 40


def test_the_flag_gives_the_rates_ascending_without_repeats():
    assert knee_flag(["--skip-rules", "--knee=60,20,40,20"]) == [20, 40, 60]
    assert knee_flag(["--skip-rules"]) == []


@pytest.mark.parametrize("given", ["--knee=fast", "--knee=0,20", "--knee=,"])
def test_a_bad_rate_list_stops_with_a_message_naming_the_flag(given):
    with pytest.raises(SystemExit, match="--knee"):
        knee_flag([given])
