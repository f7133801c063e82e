"""How fast the host ran while a benchmark measured.

On the shared 2-core machines the benchmarks run on, the same pure-Python loop took from 1.3 s to
2.5 s a few seconds apart (2026-11-24, nothing of ours running): a latency figure means little
without the host's speed beside it. A probe process times a fixed piece of CPU work every half
second by its own CPU time, not by the wall clock: waiting for a core that the benchmark's own
processes hold does not count, while a host that gives our virtual CPUs fewer cycles does. A
sample's slowdown is its time over the fastest sample of the run (1.0: the host at its best; 2.0:
the same work took twice as long). The probe costs about 2% of one core.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.common import percentile

_PROBE = """
import sys, time
work, every = int(sys.argv[1]), float(sys.argv[2])
while True:
    started, total = time.process_time(), 0
    for i in range(work):
        total += i
    print(f"{time.time():.3f} {(time.process_time() - started) * 1000:.3f}", flush=True)
    time.sleep(every)
"""


class HostProbe:
    """The probe's samples: (epoch seconds, CPU milliseconds the fixed work took)."""

    def __init__(self, work: int = 200_000, every: float = 0.5):
        self.samples: list[tuple[float, float]] = []
        self._args = [sys.executable, "-c", _PROBE, str(work), str(every)]
        self._process: subprocess.Popen | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(self._args, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True).start()

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def _read(self, stream) -> None:
        for line in stream:
            at, ms = line.split()
            self.samples.append((float(at), float(ms)))

    def typical_ms(self) -> float | None:
        """The median time of the fixed work over the run, in CPU milliseconds: to compare the host
        of one run with another's (the slowdowns compare moments of one run)."""
        return statistics.median(ms for _, ms in self.samples) if self.samples else None

    def slowdown(self, start: float | None = None, end: float | None = None) -> tuple[float, float] | None:
        """The median and 90th percentile slowdown of the samples between `start` and `end`
        (epoch seconds; None: the whole run); None if there are none."""
        fastest = min((ms for _, ms in self.samples), default=None)
        within = sorted(
            ms / fastest
            for at, ms in self.samples
            if (start is None or at >= start) and (end is None or at < end)
        )
        if not within:
            return None
        return statistics.median(within), percentile(within, 90)


@contextmanager
def host_probe() -> Iterator[HostProbe]:
    """A running probe for the block; a moment of samples first, taken before the block's load."""
    probe = HostProbe()
    probe.start()
    time.sleep(2)
    try:
        yield probe
    finally:
        probe.stop()


def typical(probe: HostProbe | None) -> str:
    """A line on the run's host, for a benchmark's footnotes."""
    ms = probe.typical_ms() if probe is not None else None
    if ms is None:
        return "  host: no probe samples"
    return (
        f"  host: the probe's fixed work took {ms:.1f} ms of CPU (median of the run; 12-14 ms on an idle"
        " host, 2026-11-24), bench/host.py"
    )


def shown(slowdown: tuple[float, float] | None) -> str:
    """'1.2 / 1.9' (median / 90th percentile), or '' without samples."""
    if slowdown is None:
        return ""
    return f"{slowdown[0]:.1f} / {slowdown[1]:.1f}"
