"""`make bench`: run every benchmark under bench/ (or those named: `make bench BENCH_ARGS="leads"`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

# Run only by name: the report runs other benchmarks again; the rest are helpers, not benchmarks.
NOT_IN_ALL = {"report", "common", "http_load", "bare_app", "raw_app", "stack", "fuzz"}


def available() -> list[str]:
    here = Path(__file__).parent
    names = (m.name for m in pkgutil.iter_modules([str(here)]))
    return sorted(n for n in names if not n.startswith("_") and n not in NOT_IN_ALL)


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or available()
    flags = [a for a in argv if a.startswith("-")]
    if not names:
        print("no benchmarks yet")
        return 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"\n=== bench/{name} ===", flush=True)
        module.main(flags)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
