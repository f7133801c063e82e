"""The `followup` command: database migrations, demo data, the embedded all-in-one runner, and the
console's retries for ops without a browser."""

from __future__ import annotations

import json
import os
import sys

import click

from app.config import PROJECT_ROOT, VAR_DIR, Settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Follow-up Engine administration."""
    from app.console.cli import MAKE_APP

    ctx.meta[MAKE_APP] = _create_app


def _create_app():
    from app import create_app

    return create_app()


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


@main.group()
def clinics() -> None:
    """Clinics: the platform operator's commands."""


# The command's options by the API's field names, so an error names the option to fix.
_CLINIC_OPTIONS = {
    "name": "--name",
    "timezone": "--timezone",
    "admin_email": "--admin-email",
    "admin_name": "--admin-name",
}


def _refuse(errors: dict, status: int) -> None:
    for field, messages in errors.items():
        text = "; ".join(messages) if isinstance(messages, list) else str(messages)
        where = _CLINIC_OPTIONS.get(field, field)
        click.echo(f"error: {where}: {text}" if field in _CLINIC_OPTIONS else f"error: {text}", err=True)
    sys.exit(status)


@clinics.command("create")
@click.option("--name", required=True, help="The clinic's name.")
@click.option("--timezone", "timezone_name", required=True, help="IANA timezone, e.g. America/Chicago.")
@click.option("--admin-email", required=True, help="The first clinic_admin's email (their login).")
@click.option("--admin-name", default=None, help="The admin's name (default: the email's local part).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def clinics_create(
    name: str, timezone_name: str, admin_email: str, admin_name: str | None, as_json: bool
) -> None:
    """Create a clinic and its first admin; print the clinic id and the admin's one-time,
    expiring password-setup link. Bad input writes nothing and exits non-zero."""
    from app import clock, create_app
    from app.auth import onboarding
    from app.auth.schemas import PlatformClinicIn
    from app.errors import DomainError

    data = {"name": name, "timezone": timezone_name, "admin_email": admin_email}
    if admin_name is not None:
        data["admin_name"] = admin_name
    invalid = PlatformClinicIn().validate(data)
    if invalid:
        _refuse(invalid, 2)
    flask_app = create_app()
    db = flask_app.extensions["followup.db"]
    try:
        with flask_app.app_context(), db.unit_of_work() as session:
            result = onboarding.onboard_clinic(
                session=session, settings=db.settings, now=clock.now(), admin_name=admin_name,
                name=name, timezone=timezone_name, admin_email=admin_email,
            )  # fmt: skip
    except DomainError as error:
        _refuse(error.errors.get("json") or {"": [error.message]}, 1)
    result["setup_expires_at"] = result["setup_expires_at"].isoformat()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"Clinic {result['clinic_id']} created; admin user {result['admin_user_id']}.")
    click.echo(f"Password-setup link (one use, expires {result['setup_expires_at']}):")
    click.echo(f"  {result['setup_link']}")


@main.command("run")
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000")
def run(port: int) -> None:
    """Run the whole system on the embedded default: migrate, seed, local Redis, then the Procfile."""
    from app.devtools.runner import run_all

    sys.exit(run_all(port=port, project_root=PROJECT_ROOT, var_dir=VAR_DIR))


def _add_console_commands() -> None:
    from app.console.cli import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_add_console_commands()  # jobs retry, notifications retry, webhooks redeliver: the console's filters

if __name__ == "__main__":
    main()
