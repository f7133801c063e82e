"""The `followup` command: database migrations, demo data, the embedded all-in-one runner, the
platform operator's clinic setup (create, verify a sender domain, assign an SMS sender), a lead's
erasure, the PHI key rotation, and the console's retries for ops without a browser."""

from __future__ import annotations

import json
import os
import sys

import click

from app.platform.config import PROJECT_ROOT, VAR_DIR, Settings


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Follow-up Engine administration."""
    from app.console.cli import MAKE_APP

    ctx.meta[MAKE_APP] = _create_app


def _create_app():
    """The app of a command: the services without the API, which no command serves."""
    from app import create_app

    return create_app(http=False)


@main.group()
def db() -> None:
    """Database migrations (Alembic)."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from app.platform import migrate

    VAR_DIR.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(_migrations_url(), revision)


@db.command("downgrade")
@click.argument("revision", default="base")
def db_downgrade(revision: str) -> None:
    """Downgrade the database to REVISION (default: base)."""
    from app.platform import migrate

    migrate.downgrade(_migrations_url(), revision)


def _migrations_url() -> str:
    """Where migrations run: PostgreSQL itself (FOLLOWUP_MIGRATIONS_DATABASE_URL when DATABASE_URL is
    a pooler's). A migration wants one server session throughout: DDL outside a transaction
    (CREATE INDEX CONCURRENTLY) with session settings such as lock_timeout, and an engine that
    prepares the statements a data migration repeats."""
    settings = Settings.from_env()
    if settings.migrations_database_url:
        return settings.migrations_database_url
    if settings.database_pooler == "transaction":
        raise click.ClickException(
            "DATABASE_URL is a transaction pooler's (FOLLOWUP_DATABASE_POOLER=transaction): set "
            "FOLLOWUP_MIGRATIONS_DATABASE_URL to PostgreSQL itself (docs/operations/pgbouncer.md)"
        )
    return settings.database_url


@db.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Autogenerate a migration from the models."""
    from app.platform import migrate

    migrate.revision(Settings.from_env().database_url, message)


@main.command("seed-demo")
@click.option("--json", "as_json", is_flag=True, help="Print the demo clinic and logins as JSON.")
def seed_demo(as_json: bool) -> None:
    """Create the demo clinic once (stages, sources, one user per role, booking set up and a working
    week of leads, calls, conversations and consultations) and print its logins."""
    from app import create_app
    from app.devtools import demo
    from app.platform import clock

    flask_app = create_app()  # with its API: the demo week is written through it
    with flask_app.app_context():
        result = demo.seed(now=clock.now())
    _print_demo(result, as_json)


@main.group()
def demo() -> None:
    """The demo clinic of `make run`."""


@demo.command("reset")
@click.option("--yes", is_flag=True, help="Reset even on a database that is not the embedded SQLite one.")
@click.option("--json", "as_json", is_flag=True, help="Print the new demo clinic and logins as JSON.")
def demo_reset(yes: bool, as_json: bool) -> None:
    """Start the demo again: retire the demo clinic (renamed, its demo logins off) and seed a new one
    with its week. Refused on any database but the embedded SQLite one unless --yes is given."""
    from app import create_app
    from app.devtools import demo as demo_clinic
    from app.platform import clock

    settings = Settings.from_env()
    if not (yes or settings.database_url.startswith("sqlite")) or settings.is_production:
        click.echo(
            "error: this is not the embedded development database: give --yes to reset its demo clinic"
            if not settings.is_production
            else "error: FOLLOWUP_ENV=production: the demo is never reset there",
            err=True,
        )
        sys.exit(2)
    flask_app = create_app()
    with flask_app.app_context():
        result = demo_clinic.reset(now=clock.now())
    _print_demo(result, as_json)


def _print_demo(result: dict, as_json: bool) -> None:
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
    "domain": "DOMAIN",
    "clinic_id": "CLINIC_ID",
    "sender": "SENDER",
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
    from app.bootstrap import wiring_of
    from app.domains.auth import onboarding
    from app.domains.auth.schemas import PlatformClinicIn
    from app.platform import clock
    from app.platform.errors import DomainError

    data = {"name": name, "timezone": timezone_name, "admin_email": admin_email}
    if admin_name is not None:
        data["admin_name"] = admin_name
    invalid = PlatformClinicIn().validate(data)
    if invalid:
        _refuse(invalid, 2)
    flask_app = _create_app()
    db = flask_app.extensions["followup.db"]
    try:
        with flask_app.app_context(), db.unit_of_work() as session:
            result = onboarding.onboard_clinic(
                session=session,
                new=onboarding.NewClinic(
                    name=name, timezone=timezone_name, admin_email=admin_email, admin_name=admin_name
                ),
                settings=db.settings,
                now=clock.now(),
                hooks=wiring_of(flask_app).auth,
            )
    except DomainError as error:
        _refuse(error.errors.get("json") or {"": [error.message]}, 1)
    result["setup_expires_at"] = result["setup_expires_at"].isoformat()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"Clinic {result['clinic_id']} created; admin user {result['admin_user_id']}.")
    click.echo(f"Password-setup link (one use, expires {result['setup_expires_at']}):")
    click.echo(f"  {result['setup_link']}")


@clinics.command("verify-domain")
@click.argument("clinic_id", type=click.IntRange(1, 2**31 - 1))
@click.argument("domain")
def clinics_verify_domain(clinic_id: int, domain: str) -> None:
    """Record that DOMAIN's SPF and DKIM records are set for the platform's mail on behalf of clinic
    CLINIC_ID (as POST /api/platform/clinics/ID/sender-domains does): its email_from may then use
    the domain. A domain verified for another clinic is refused."""
    from app.domains.auth.schemas import SenderDomainIn
    from app.domains.auth.senders import identity
    from app.platform import clock
    from app.platform.errors import DomainError

    invalid = SenderDomainIn().validate({"domain": domain})
    if invalid:
        _refuse(invalid, 2)
    flask_app = _create_app()
    db = flask_app.extensions["followup.db"]
    try:
        with flask_app.app_context(), db.unit_of_work() as session:
            row = identity.verify_domain(
                session=session, clinic_id=clinic_id, domain=domain, config=db.settings, now=clock.now()
            )
            verified = row.domain
    except DomainError as error:
        _refuse(error.errors.get("json") or {"": [error.message]}, 1)
    click.echo(f"{verified} is verified for clinic {clinic_id}.")


@clinics.command("assign-sms-sender")
@click.argument("clinic_id", type=click.IntRange(1, 2**31 - 1))
@click.argument("sender")
@click.option("--release", is_flag=True, help="Take the sender back from the clinic instead.")
def clinics_assign_sms_sender(clinic_id: int, sender: str, release: bool) -> None:
    """Assign SENDER, a number (E.164) or Messaging Service SID of the engine's Twilio account, to
    clinic CLINIC_ID (as POST /api/platform/clinics/ID/sms-senders does): its admin may then choose
    it, and texts to it are routed to the clinic. The shared SMS_FROM, or another clinic's, is
    refused. --release takes it back (as DELETE .../sms-senders/SENDER)."""
    from app.domains.auth.schemas import SmsSenderIn
    from app.domains.auth.senders import identity
    from app.platform import clock
    from app.platform.errors import DomainError

    invalid = SmsSenderIn().validate({"sender": sender})
    if invalid:
        _refuse(invalid, 2)
    flask_app = _create_app()
    db = flask_app.extensions["followup.db"]
    try:
        with flask_app.app_context(), db.unit_of_work() as session:
            if release:
                identity.release_sms_sender(
                    session=session, clinic_id=clinic_id, sender=sender, now=clock.now()
                )
            else:
                identity.assign_sms_sender(
                    session=session, clinic_id=clinic_id, sender=sender, config=db.settings, now=clock.now()
                )
    except DomainError as error:
        _refuse(error.errors.get("json") or {"": [error.message]}, 1)
    click.echo(f"{sender} is {'no longer' if release else 'now'} assigned to clinic {clinic_id}.")


@main.group()
def leads() -> None:
    """Leads: the operator's privacy commands."""


@leads.command("erase")
@click.argument("lead_id", type=click.IntRange(1, 2**31 - 1))
@click.option("--json", "as_json", is_flag=True, help="Print what was erased as JSON.")
def leads_erase(lead_id: int, as_json: bool) -> None:
    """Erase lead LEAD_ID's personal and health data everywhere it was copied (as
    POST /api/leads/ID/erase does); an anonymised tombstone stays. Audited as `cli`."""
    from app.domains.leads.models import Lead
    from app.domains.privacy import erasure
    from app.platform import clock

    flask_app = _create_app()
    db = flask_app.extensions["followup.db"]
    with flask_app.app_context(), db.unit_of_work() as session:
        lead = session.get(Lead, lead_id)
        if lead is None:
            click.echo(f"error: lead {lead_id} not found", err=True)
            sys.exit(1)
        result = erasure.erase(
            session=session, clinic_id=lead.clinic_id, lead_id=lead_id, actor_ref="cli", now=clock.now()
        )
    result["erased_at"] = result["erased_at"].isoformat()
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"Lead {lead_id} erased; its phone and email are on the clinic's suppression list.")
    for key, value in result.items():
        if key not in ("lead_id", "erased_at", "suppressed"):
            click.echo(f"  {key}: {value}")


@main.group()
def phi() -> None:
    """Protected health information: the encryption key."""


@phi.command("rotate-key")
@click.option(
    "--batch", default=500, show_default=True, type=click.IntRange(1, 100_000), help="Rows per transaction."
)
def phi_rotate_key(batch: int) -> None:
    """Re-encrypt every protected value under the first key of PHI_ENCRYPTION_KEY (NEW,OLD) and
    rebuild the blind indexes, in resumable batches, while the service runs. Rerun after a stop:
    it continues. When it reports done, remove OLD from PHI_ENCRYPTION_KEY."""
    from app.domains.privacy import rotation
    from app.platform import clock

    flask_app = _create_app()
    db = flask_app.extensions["followup.db"]
    keys = db.settings.resolved_phi_key()
    with flask_app.app_context():
        totals = rotation.rotate_all(db=db, keys=keys, now=clock.now, size=batch)
    for table, count in totals.items():
        click.echo(f"  {table}: {count} value(s) re-encrypted")
    click.echo("done: every protected value is under the first key; the older keys may be removed.")


@main.command("run")
@click.option(
    "--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000"
)
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
