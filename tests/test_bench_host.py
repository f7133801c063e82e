"""bench/host's probe: a real probe process, and the slowdown of a phase read off its samples."""

from __future__ import annotations

import time

from bench.host import HostProbe, host_probe, shown


def test_a_phase_is_judged_against_the_fastest_sample_of_the_whole_run():
    probe = HostProbe()
    probe.samples = [(100.0, 10.0), (101.0, 11.0), (200.0, 20.0), (201.0, 30.0), (202.0, 20.0)]
    assert probe.slowdown(100, 150) == (1.05, 1.1)  # the host at its best: about 1
    assert probe.slowdown(150, 300) == (2.0, 3.0)  # the same work took twice as long, at worst 3 times
    assert probe.slowdown(300, 400) is None and shown(None) == ""
    assert shown(probe.slowdown(150, 300)) == "2.0 / 3.0"


def test_the_probe_process_reports_while_the_block_runs_and_stops_with_it():
    with host_probe() as probe:
        time.sleep(1)
        during = len(probe.samples)
        process = probe._process
    assert during >= 2  # about one sample every half second
    assert all(ms > 0 for _, ms in probe.samples)
    assert process.poll() is not None  # stopped with the block
    assert probe.slowdown() is not None
