"""Pages of the documentation site written from the code at build time, so they cannot drift from it:
the configuration reference from app/platform/config.py (the same comments and defaults as `.env.example`),
and the API reference from the committed OpenAPI document. docs/hooks.py hands them to MkDocs.
"""

from __future__ import annotations

from dataclasses import fields

from app.devtools.env_example import PROCESS_VARIABLES, _comments, _default
from app.platform.config import ENV_NAMES, Settings, env_name

_TYPES = {
    "int": "integer",
    "float": "number",
    "bool": "boolean (1, true, yes, on)",
    "str": "text",
    "str | None": "text",
    "list[str]": "comma-separated list",
}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text


def render_configuration() -> str:
    comments = _comments()
    defaults = Settings()
    lines = [
        "# Configuration",
        "",
        "Every setting is read from the environment when a process starts (`Settings.from_env` in",
        "`app/platform/config.py`). Everything but the secrets has an embedded default for a laptop;",
        "`FOLLOWUP_ENV=production` refuses the defaults that are unsafe there (the console email and SMS",
        "backends, a short `SECRET_KEY`, an SMTP relay reached in clear, private webhook addresses).",
        "A setting with a name of its own (below) is read from that name; every other one is",
        "`FOLLOWUP_<NAME>`. A numeric setting with a name of its own also answers to `FOLLOWUP_<NAME>`",
        "(`FOLLOWUP_SMTP_PORT`, `FOLLOWUP_MAX_CONTENT_LENGTH`). Durations are in seconds unless the",
        "name says otherwise; an empty variable means the default.",
        "",
        "Under docker-compose every container reads the same `.env` (`cp .env.example .env`):",
        "`.env.example` lists the same settings with the same comments (`make env-example`).",
        "",
        "!!! note",
        "    This page is generated from `app/platform/config.py` each time the site is built",
        "    (`app/devtools/docs_site.py`): a setting added there appears here with its comment.",
        "",
        "## Settings (`app/platform/config.py`)",
        "",
        "| variable | type | default | what it does |",
        "|---|---|---|---|",
    ]
    for f in fields(Settings):
        comment = comments.get(f.name) or f.name.replace("_", " ")
        kind = _TYPES.get(str(f.type), str(f.type))
        default = _default(f.name, getattr(defaults, f.name))
        variable = f"`{env_name(f.name)}`"
        lines.append(f"| {variable} | {kind} | `{_cell(default)}` | {_cell(_sentence(comment))} |")
    lines += [
        "",
        f"{len(fields(Settings))} settings; {len(ENV_NAMES)} of them have a name of their own.",
        "",
        "## Read by the processes and docker-compose",
        "",
        "These are read by the `Procfile`'s commands, by `docker-compose.yml` or by the OpenTelemetry",
        "SDK, not by `app/platform/config.py`.",
        "",
        "| variable | default | what it does |",
        "|---|---|---|",
    ]
    for name, comment, default in PROCESS_VARIABLES:
        lines.append(f"| `{name}` | `{_cell(default)}` | {_cell(_sentence(comment))} |")
    lines.append("")
    return "\n".join(lines)


def _operation_rows(spec: dict, tag: str) -> list[tuple[str, str, dict]]:
    rows = []
    for path, item in spec.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation and (operation.get("tags") or ["other"])[0] == tag:
                rows.append((method.upper(), path, operation))
    return rows


def _statuses(operation: dict) -> str:
    return ", ".join(sorted(operation.get("responses", {})))


def render_api_reference(spec: dict) -> str:
    info = spec.get("info", {})
    tags = [t["name"] for t in spec.get("tags", [])]
    descriptions = {t["name"]: t.get("description", "") for t in spec.get("tags", [])}
    for item in spec.get("paths", {}).values():
        for method in HTTP_METHODS:
            for tag in (item.get(method) or {}).get("tags") or (["other"] if method in item else []):
                if tag not in tags:
                    tags.append(tag)
    count = sum(1 for item in spec.get("paths", {}).values() for m in HTTP_METHODS if m in item)
    lines = [
        "# API reference",
        "",
        f"{info.get('title', 'The API')} {info.get('version', '')}, OpenAPI {spec.get('openapi', '')}: "
        f"{len(spec.get('paths', {}))} paths, {count} operations.",
        "",
        "This page is generated, each time the site is built, from the committed OpenAPI document",
        "(`openapi.json` at the root of the repository), which CI compares with the running code's.",
        "A running server serves the same document at `/api/openapi.json` and Swagger UI at",
        "`/api/docs`; generate clients from the document, not from this page.",
        "",
        "How to call the API (authentication, errors, ETags, idempotency, paging, rate limits):",
        "[Calling the API](guides/api.md). The error codes and the linters' verdicts on the document:",
        "[API contract](api-contract.md).",
        "",
    ]
    for tag in tags:
        rows = _operation_rows(spec, tag)
        if not rows:
            continue
        lines += [f"## {tag}", ""]
        if descriptions.get(tag):
            lines += [_cell(descriptions[tag]), ""]
        named = any(operation.get("operationId") for _, _, operation in rows)
        lines += [
            "| operation | request | summary | answers |" if named else "| request | summary | answers |",
            "|---|---|---|---|" if named else "|---|---|---|",
        ]
        for method, path, operation in rows:
            summary = operation.get("summary") or (operation.get("description") or "").split("\n")[0]
            cells = [f"`{method} {path}`", _cell(summary), _cell(_statuses(operation))]
            if named:
                cells.insert(0, f"`{operation['operationId']}`" if operation.get("operationId") else "")
            lines.append(f"| {' | '.join(cells)} |")
        lines.append("")
    return "\n".join(lines)
