"""`make fuzz`: schemathesis against /api/openapi.json of a live local server, as a clinic admin.

A real HTTP server (werkzeug, threaded, on 127.0.0.1) rather than the in-process WSGI calls of the
suite's short run: the long run also covers what only a socket shows (Content-Length handling,
header encoding, bodies the test client would refuse to build).

Prints a table: operations, cases, 5xx answers, schema violations (response schema, status code,
content type, headers, an invalid document), other check failures (e.g. schema-valid data that a
business rule refuses: listed, not fatal). Exits non-zero on any 5xx or schema violation.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

from bench.common import bench_database, bench_redis, print_table

MAX_EXAMPLES = 100
REPORT = Path("var/fuzz/report.json")


def main(flags: list[str]) -> None:
    max_examples = _flag(flags, "--max-examples", MAX_EXAMPLES)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        workdir = Path(tmp)
        with bench_database(workdir) as database_url, bench_redis(workdir) as redis_url:
            from app.devtools.fuzzing import fuzz_app

            app, headers = fuzz_app(database_url=database_url, redis_url=redis_url)
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                summary = _run_schemathesis(
                    url=f"http://127.0.0.1:{server.server_port}/api/openapi.json",
                    headers=headers,
                    max_examples=max_examples,
                    seed=_flag(flags, "--seed", 0),
                    report=REPORT,
                )
            finally:
                server.shutdown()
    print_table(
        f"schemathesis, all checks, up to {max_examples} cases per operation (local server, PostgreSQL)",
        ["operations", "cases", "5xx", "schema violations", "other check failures"],
        [
            [
                summary["operations"],
                summary["cases"],
                summary["server_errors"],
                summary["schema_violations"],
                summary["other_failures"],
            ]
        ],
    )
    for line in summary["failures"]:
        print("  ", line)
    print(f"  report: {REPORT}")
    # Other failures (schema-valid data refused by a business rule, ...) are listed, not fatal.
    if summary["server_errors"] or summary["schema_violations"]:
        sys.exit(1)


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(name + "="):
            return int(flag.split("=", 1)[1])
    return default


def _run_schemathesis(*, url: str, headers: dict, max_examples: int, seed: int, report: Path) -> dict:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        url,
        "--checks",
        "all",
        "--max-examples",
        str(max_examples),
        "--workers",
        "2",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--continue-on-failure",
        "--output-truncate",
        "true",
        # Documented in the contract, served by the stream process on its own server: not this one.
        "--exclude-path",
        "/api/me/events",
    ]
    if seed:
        command += ["--seed", str(seed)]  # replay a run (0: a new random one)
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    subprocess.run(command, check=False)
    return summarize(json.loads(report.read_text()))


def summarize(report: dict) -> dict:
    """Counts from schemathesis' JSON run report: operations, cases, failures by kind."""
    counts = {"server_errors": 0, "schema_violations": 0, "other_failures": 0}
    failures = []
    for group in report.get("failures", []):
        kind = _kind(group.get("code", ""), group.get("title", ""))
        counts[kind] += group.get("count", 0)
        failures.append(
            f"{group.get('code')} {group.get('title')} x{group.get('count')}: {group.get('operations')}"
        )
    for error in report.get("errors", []):
        counts["schema_violations"] += error.get("count", 0)  # the document itself is invalid
        failures.append(f"error {error.get('title')} x{error.get('count')}")
    operations = report.get("operations", {})
    return {
        "operations": operations.get("tested", 0),
        "cases": report.get("test_cases", {}).get("generated", 0),
        **counts,
        "failures": failures,
    }


def _kind(code: str, title: str) -> str:
    if code == "ST101" or "Server error" in title:
        return "server_errors"
    if code.startswith("ST1"):  # undocumented status, response schema, content type, headers
        return "schema_violations"
    return "other_failures"  # ST2xx: valid data refused by a business rule, invalid data accepted
