"""`make fuzz`: schemathesis against /api/openapi.json of a live local server, as a clinic admin.

A real HTTP server (werkzeug, threaded, on 127.0.0.1) rather than the in-process WSGI calls of the
suite's short run: the long run also covers what only a socket shows (Content-Length handling,
header encoding, bodies the test client would refuse to build).

Prints a table: operations, cases, 5xx answers, schema violations (response schema, status code,
content type, headers), other check failures. Exits non-zero when any check failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

from bench.common import bench_database, bench_redis, print_table

MAX_EXAMPLES = 100
SCHEMA_CHECKS = {
    "response_schema_conformance",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
}


def main(flags: list[str]) -> None:
    max_examples = _flag(flags, "--max-examples", MAX_EXAMPLES)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        workdir = Path(tmp)
        with bench_database(workdir) as database_url, bench_redis(workdir) as redis_url:
            from app.devtools.fuzzing import fuzz_app

            app, headers = fuzz_app(database_url=database_url, redis_url=redis_url)
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            try:
                summary = _run_schemathesis(
                    url=f"http://127.0.0.1:{server.server_port}/api/openapi.json",
                    headers=headers,
                    max_examples=max_examples,
                    report=workdir / "report.ndjson",
                )
            finally:
                server.shutdown()
    print_table(
        f"schemathesis, all checks, up to {max_examples} cases per operation (local server, PostgreSQL)",
        ["operations", "cases", "5xx", "schema violations", "other failures"],
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
    for line in summary["failures"][:200]:
        print("  ", line)
    if summary["server_errors"] or summary["schema_violations"] or summary["other_failures"]:
        sys.exit(1)


def _flag(flags: list[str], name: str, default: int) -> int:
    for flag in flags:
        if flag.startswith(name + "="):
            return int(flag.split("=", 1)[1])
    return default


def _run_schemathesis(*, url: str, headers: dict, max_examples: int, report: Path) -> dict:
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
        "--seed",
        "1",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--continue-on-failure",
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    subprocess.run(command, check=False)
    return summarize(report)


def summarize(report: Path) -> dict:
    """Counts from schemathesis' ndjson events: cases run, and failures by check."""
    cases = 0
    operations: set[str] = set()
    failures: list[str] = []
    server_errors = schema_violations = other = 0
    for line in report.read_text().splitlines():
        event = json.loads(line)
        for kind, payload in event.items():
            if kind != "ScenarioFinished" or not isinstance(payload, dict):
                continue
            recorder = payload.get("recorder") or {}
            label = recorder.get("label") or ""
            operations.add(label)
            cases += len(recorder.get("cases") or {})
            for check_list in (recorder.get("checks") or {}).values():
                for check in check_list:
                    if check.get("status") != "FAILURE":
                        continue
                    name = check.get("name")
                    failure = check.get("failure") or {}
                    failures.append(f"{label}: {name}: {failure.get('title', '')}")
                    if name == "not_a_server_error":
                        server_errors += 1
                    elif name in SCHEMA_CHECKS:
                        schema_violations += 1
                    else:
                        other += 1
    return {
        "operations": len(operations),
        "cases": cases,
        "server_errors": server_errors,
        "schema_violations": schema_violations,
        "other_failures": other,
        "failures": sorted(set(failures)),
    }
