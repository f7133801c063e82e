"""The sequence graph's pure checks and walk (no database): defaults, rejoins, ends, loops."""

from __future__ import annotations

from app.domains.sequences import graph

WAIT = {"for": ["link_clicked"], "timeout": {"amount": 1, "unit": "days"}}


def test_a_straight_sequence_goes_step_after_step_and_ends():
    steps = [{"channel": "sms"}, {"channel": "email"}]
    assert graph.problems(steps) == {}
    assert graph.after(steps, 0, steps[0]) == 1 and graph.after(steps, 1, steps[1]) is None
    assert [graph.key_of(step, i) for i, step in enumerate(steps)] == ["1", "2"]


def test_paths_split_rejoin_and_end():
    steps = [
        {"key": "intro", "wait": WAIT, "on": {"link_clicked": "hot", "timeout": "cold"}},
        {"key": "hot", "next": "together"},
        {"key": "cold"},  # goes on to the next in the list: the rejoin
        {"key": "together", "next": "end"},
    ]
    assert graph.problems(steps) == {}
    assert graph.after(steps, 0, steps[0], "link_clicked") == 1
    assert graph.after(steps, 0, steps[0], "timeout") == 2
    assert graph.after(steps, 1, steps[1]) == 3 and graph.after(steps, 2, steps[2]) == 3
    assert graph.after(steps, 3, steps[3]) is None


def test_what_the_save_refuses_by_step_and_place():
    assert graph.problems([{"key": "a"}, {"key": "a"}]) == {"1": {"key": ["step 1 has the key 'a' already"]}}
    assert graph.problems([{"next": "2"}, {"next": "1"}]) == {
        "1": {"next": ["loops back to step 1 with no wait on the way"]}
    }
    assert "unreachable" in graph.problems([{"next": "end"}, {}])["1"]["key"][0]
    assert graph.problems([{"key": "a", "wait": WAIT, "on": {"timeout": "a"}}]) == {}  # a loop through a wait
    assert "no step" in graph.problems([{"next": "b"}])["0"]["next"][0]
