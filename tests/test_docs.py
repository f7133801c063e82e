"""The documentation: the site builds in MkDocs' strict mode (a broken link or anchor fails it), offline;
its configuration page is written from app/platform/config.py; the README stays short and opens with its two
commands; and no page names a file the repository does not have.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import fields

import pytest
from cryptography.fernet import Fernet

from app.devtools import docs_site, screenshots_doc
from app.platform.config import Settings, env_name
from tests.workers import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"
COMMITTED_OPENAPI = PROJECT_ROOT / "openapi.json"


@pytest.fixture
def openapi_path(tmp_path):
    """The committed document; where a checkout has none yet, the running code's."""
    if COMMITTED_OPENAPI.exists():
        return COMMITTED_OPENAPI
    from app import create_app

    settings = Settings(
        secret_key="s" * 40,
        phi_encryption_key=Fernet.generate_key().decode(),
        database_url=f"sqlite:///{tmp_path / 'docs.db'}",
    )
    spec = create_app(settings).test_client().get("/api/openapi.json").get_json()
    path = tmp_path / "openapi.json"
    path.write_text(json.dumps(spec))
    return path


def build_site(tmp_path, openapi_path):
    """`mkdocs build --strict` into tmp_path/site, offline; returns the site's folder."""
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_PROXY") and not k.endswith("_proxy")}
    env |= {"FOLLOWUP_DOCS_OPENAPI": str(openapi_path), "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    return site


def test_the_site_builds_in_strict_mode_offline(tmp_path, openapi_path):
    site = build_site(tmp_path, openapi_path)
    configuration = (site / "configuration" / "index.html").read_text()
    assert "FOLLOWUP_SCHEDULE_HORIZON_SECONDS" in configuration
    reference = (site / "api-reference" / "index.html").read_text()
    assert "/api/leads/{lead_id}/tasks" in reference


def test_the_configuration_page_lists_every_setting_with_its_default():
    page = docs_site.render_configuration()
    defaults = Settings()
    for f in fields(Settings):
        row = next((line for line in page.splitlines() if line.startswith(f"| `{env_name(f.name)}` |")), None)
        assert row is not None, env_name(f.name)
        if f.name not in ("secret_key", "phi_encryption_key", "database_url") and getattr(defaults, f.name):
            assert f"`{getattr(defaults, f.name)}`" in row, row
        assert row.split("|")[4].strip(), f"{env_name(f.name)} has no description in app/platform/config.py"


def test_the_api_reference_lists_every_operation():
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "T", "version": "1"},
        "tags": [{"name": "leads", "description": "Leads"}],
        "paths": {
            "/api/leads": {
                "get": {
                    "tags": ["leads"],
                    "operationId": "listLeads",
                    "summary": "List",
                    "responses": {"200": {}},
                },
                "post": {"tags": ["leads"], "summary": "Create", "responses": {"201": {}, "422": {}}},
            },
            "/healthz": {"get": {"responses": {"200": {}}}},
        },
    }
    page = docs_site.render_api_reference(spec)
    assert "| `listLeads` | `GET /api/leads` | List | 200 |" in page
    assert "`POST /api/leads` | Create | 201, 422 |" in page
    assert "| `GET /healthz` |  | 200 |" in page  # a tag without operationIds has no such column
    assert "2 paths, 3 operations" in page


def test_the_readme_is_short_and_opens_with_the_two_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    first_block = text.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    assert first_block[0].startswith("make run ") and first_block[1].startswith("make test ")
    assert "staff web app" in text and "headless" not in text  # the engine has its own screens
    assert "```mermaid" in text


_PATH = re.compile(
    r"(?<![\w./-])((?:app|tests|bench|workers|ops|migrations|docs|\.ci)/[\w./-]*\w"
    r"|Makefile|Procfile|Dockerfile|docker-compose\.yml|beat_schedule\.py|pyproject\.toml"
    r"|requirements\.lock|\.env\.example|mkdocs\.yml|alembic\.ini)"
)


def _pages():
    return [README, *sorted(DOCS.rglob("*.md"))]


def test_no_page_names_a_file_the_repository_does_not_have():
    missing = []
    for page in _pages():
        text = page.read_text()
        assert "DESIGN.md" not in text, f"{page.name} cites a design document that is not in the repository"
        for name in _PATH.findall(text):
            name = name.rstrip(".")
            if "<" in name or "*" in name or name.startswith("app/<"):
                continue
            candidates = [PROJECT_ROOT / name, page.parent / name]
            if not any(path.exists() for path in candidates):
                missing.append(f"{page.relative_to(PROJECT_ROOT)}: {name}")
    assert not missing, missing


def test_the_screenshots_page_shows_every_picture_make_screenshots_took():
    """docs/screenshots.md lists each page pictured in docs/screenshots, and nothing else."""
    written = (DOCS / "screenshots.md").read_text()
    assert written == screenshots_doc.document(DOCS / "screenshots"), "run `make screenshots`"
