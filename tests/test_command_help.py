"""`--help` on every command prints help and does nothing else (issue 77): `python -m bench --help`
ran every benchmark."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from app.cli import main as followup
from tests.workers import PROJECT_ROOT


def test_bench_help_prints_the_benchmarks_and_runs_none():
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: python -m bench")
    assert "leads " in done.stdout and "availability " in done.stdout  # the benchmarks it would run
    assert "=== bench/" not in done.stdout  # ... and ran none


def _commands(group: click.Group, path: list[str]):
    for name, command in group.commands.items():
        yield [*path, name]
        if isinstance(command, click.Group):
            yield from _commands(command, [*path, name])


def test_followup_help_and_each_subcommands_help_print_help():
    runner = CliRunner()
    paths = [[], *_commands(followup, [])]
    assert ["demo", "reset"] in paths and ["seed-demo"] in paths
    for path in paths:
        done = runner.invoke(followup, [*path, "--help"])
        assert done.exit_code == 0, (path, done.output, done.exception)
        assert done.output.startswith("Usage:") and " ".join(path) in done.output.splitlines()[0], path
