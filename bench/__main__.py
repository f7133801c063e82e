"""`make bench`: run every benchmark under bench/ (or those named: `make bench BENCH_ARGS="leads"`)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path

# Run only by name: the report runs other benchmarks again, the soak takes half an hour (two runs
# of 15 minutes); the rest are helpers, not benchmarks.
NOT_IN_ALL = {"report", "soak", "common", "host", "http_load", "bare_app", "raw_app", "stack", "fuzz"}


def available() -> list[str]:
    here = Path(__file__).parent
    names = (m.name for m in pkgutil.iter_modules([str(here)]))
    return sorted(n for n in names if not n.startswith("_") and n not in NOT_IN_ALL)


def joined_flags(argv: list[str]) -> list[str]:
    """`--name value` as `--name=value` (the benchmarks read `--name=value`), unless `value` is a
    benchmark's name: `fairness --campaign 300` is `fairness --campaign=300`, while
    `automation --skip-load leads` still runs leads too."""
    here = Path(__file__).parent
    modules = {m.name for m in pkgutil.iter_modules([str(here)])}
    joined: list[str] = []
    for arg in argv:
        previous = joined[-1] if joined else ""
        if (
            previous.startswith("--")
            and "=" not in previous
            and not arg.startswith("-")
            and arg not in modules
        ):
            joined[-1] = f"{previous}={arg}"
        else:
            joined.append(arg)
    return joined


HELP_FLAGS = {"-h", "--help"}


def usage() -> str:
    first_lines = {}
    for name in available():
        doc = (importlib.util.find_spec(f"bench.{name}").loader.get_source(f"bench.{name}") or "").strip()
        first_lines[name] = ast.get_docstring(ast.parse(doc)) or ""
    listed = "\n".join(
        f"  {name:<20} {text.splitlines()[0] if text else ''}" for name, text in first_lines.items()
    )
    return (
        "usage: python -m bench [BENCHMARK ...] [--flag=value ...]\n\n"
        "Runs the named benchmarks (each prints a table), or every one below when none is named;\n"
        "report, soak and fuzz run only when named.\n\n"
        f"benchmarks:\n{listed}"
    )


def main(argv: list[str]) -> int:
    if HELP_FLAGS & set(argv):  # help runs nothing: every benchmark takes minutes
        print(usage())
        return 0
    argv = joined_flags(argv)
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
