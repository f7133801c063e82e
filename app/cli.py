"""The `followup` command: database migrations, demo data, and the embedded all-in-one runner."""

from __future__ import annotations

import json
import os
import sys

import click

from app.config import PROJECT_ROOT, VAR_DIR, Settings


@click.group()
def main() -> None:
    """Follow-up Engine administration."""


@main.group()
def db() -> None:
    """Database migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from app import migrate

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(Settings.from_env().database_url, revision)


@db.command("downgrade")
@click.argument("revision", default="base")
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (default: base)."""
    from app import migrate

    migrate.downgrade(Settings.from_env().database_url, revision)


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    from app import migrate

    migrate.revision(Settings.from_env().database_url, message)


@main.command("seed-demo")
@click.option("--json", "as_json", is_flag=True, help="Print the demo clinic and logins as JSON.")
def seed_demo(as_json: bool) -> None:
    """Create the demo clinic once (stages, sources, one user per role) and print its logins."""
    from app import clock, create_app
    from app.devtools import demo

    flask_app = create_app()
    with flask_app.app_context():
        result = demo.seed(now=clock.now())
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"Demo clinic {result['clinic_id']}; logins:")
    for user in result["users"]:
        click.echo(f"  {user['role']:<22} {user['email']:<32} {user['password']}")


@main.command("run")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000")
def run(port: int) -> None:
    """Run the whole system on the embedded default: migrate, seed, local Redis, then the Procfile."""
    from app.devtools.runner import run_all

    sys.exit(run_all(port=port, project_root=PROJECT_ROOT, var_dir=VAR_DIR))


if __name__ == "__main__":
    main()
