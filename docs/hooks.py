"""MkDocs hooks (mkdocs.yml `hooks:`): the pages written from the code at build time.

- configuration.md from app/platform/config.py (app/devtools/docs_site.py), so it cannot drift;
- api-reference.md from the committed OpenAPI document, `openapi.json` at the repository's root
  (FOLLOWUP_DOCS_OPENAPI names another file: tests build the site from the running code's document).

Nothing here reaches the network: the build works offline.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent


def _openapi() -> dict:
    path = Path(os.environ.get("FOLLOWUP_DOCS_OPENAPI") or ROOT / "openapi.json")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PluginError(
            f"{path} is missing: the API reference is rendered from the committed OpenAPI document"
        ) from None


def on_files(files, config):
    # `app` from this checkout, ahead of an installed copy of the project (set here, not at import:
    # MkDocs restores sys.path after loading a hooks file).
    if sys.path[0] != str(ROOT):
        sys.path.insert(0, str(ROOT))
    from app.devtools import docs_site

    pages = {
        "configuration.md": docs_site.render_configuration(),
        "api-reference.md": docs_site.render_api_reference(_openapi()),
    }
    for uri, content in pages.items():
        files.append(File.generated(config, uri, content=content))
    return files
