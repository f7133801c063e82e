"""`openapi.json`, the committed API contract, written from the running code's document.

    python -m app.devtools.openapi > openapi.json    (or `make openapi`)

The app is built with throwaway secrets, an in-memory SQLite database and a Redis it never
contacts: the document depends on the code only, never on a machine's settings. Keys are sorted
and the indentation fixed, so the file changes only when the contract does
(tests/test_openapi_contract.py compares it with the running code's).
"""

from __future__ import annotations

import json
import secrets
import sys

from cryptography.fernet import Fernet

from app.platform.config import Settings

COMMITTED_PATH = "openapi.json"


def document() -> dict:
    """The OpenAPI document of an app built from the code alone."""
    app = code_only_app()
    with app.app_context():
        return app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()


def code_only_app():
    """The app, built with throwaway settings that reach no database or Redis."""
    from app import create_app

    settings = Settings(
        env="test",
        secret_key=secrets.token_urlsafe(32),
        phi_encryption_key=Fernet.generate_key().decode(),
        database_url="sqlite://",
        redis_url="redis://127.0.0.1:1/0",
    )
    return create_app(settings)


def render(spec: dict) -> str:
    """The document as committed: sorted keys, two-space indentation, one final newline."""
    return json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(document()))
