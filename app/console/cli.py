"""`followup jobs retry`, `followup notifications retry`, `followup webhooks redeliver`: the console's
failures filters and retries for ops without a browser. Each prints what it will touch (how many, a
sample) and asks, unless --yes."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import click

from app.console import failures

CLI_ACTOR = "cli"


def _day(value: datetime | None, extra_days: int = 0) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) + timedelta(days=extra_days)
    except OverflowError:  # --until 9999-12-31: its next day has no datetime
        raise click.BadParameter("give a day before 9999-12-31", param_hint="--until") from None


@dataclass(frozen=True)
class Asked:
    """The options every retry command takes: the clinic, the error text, the days (UTC; `until`
    is inclusive) and --yes."""

    clinic_id: int
    error: str | None
    since: datetime | None
    until: datetime | None
    yes: bool

    def filters(self, source: str, **narrower) -> failures.Filters:
        """The console's filters of `source`: these options and the command's own (`narrower`)."""
        return failures.Filters(
            source, **narrower, error=self.error, since=_day(self.since), until=_day(self.until, 1)
        )


def _common(func):
    """The shared options, handed to the command as one `Asked` (click passes each as a keyword)."""
    options = [
        click.option("--clinic", "clinic_id", type=int, required=True, help="The clinic's id."),
        click.option("--error", default=None, help="Only those whose last error contains this text."),
        click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="From this day (UTC)."),
        click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="To this day (UTC)."),
        click.option("--yes", is_flag=True, help="Do not ask before retrying."),
    ]
    for option in reversed(options):
        func = option(func)

    @functools.wraps(func)  # keeps the name, the help text and the options click reads from it
    def command(*, clinic_id, error, since, until, yes, **narrower):
        return func(Asked(clinic_id, error, since, until, yes), **narrower)

    return command


MAKE_APP = "followup.make_app"  # click's context meta: the `followup` command's app factory


def _run(asked: Asked, filters: failures.Filters, verb: str) -> None:
    from app.platform import clock

    clinic_id = asked.clinic_id
    flask_app = click.get_current_context().meta[MAKE_APP]()
    db = flask_app.extensions["followup.db"]
    with flask_app.app_context():
        with db.unit_of_work() as session:
            preview = failures.preview(session=session, clinic_id=clinic_id, filters=filters)
        click.echo(f"{preview['count']} {filters.source} of clinic {clinic_id} match; {verb} them.")
        for row in preview["sample"]:
            when = row["at"].strftime("%Y-%m-%d %H:%M")
            click.echo(f"  #{row['id']} {row['status']} {row['kind']} {when} {(row['error'] or '')[:80]}")
        if preview["count"] > len(preview["sample"]):
            click.echo(f"  ... and {preview['count'] - len(preview['sample'])} more")
        if preview["warning"]:
            click.echo(f"warning: {preview['warning']}")
        if not preview["count"]:
            return
        if not asked.yes and not click.confirm(f"{verb.capitalize()} {preview['count']}?", default=False):
            click.echo("Nothing done.")
            sys.exit(1)
        with db.unit_of_work() as session:
            count = failures.retry_matching(
                session=session, clinic_id=clinic_id, filters=filters, actor=CLI_ACTOR, now=clock.now()
            )
    click.echo(f"{count} queued again.")


@click.group("jobs")
def jobs() -> None:
    """The job ledger."""


@jobs.command("retry")
@_common
@click.option("--kind", default=None, help="Only jobs of this kind (e.g. notification.deliver).")
@click.option("--status", type=click.Choice(["dead", "failed"]), default=None, help="Dead or failed (both).")
def jobs_retry(asked: Asked, kind, status) -> None:
    """Run the clinic's dead and failed ledger jobs again (attempts reset; audited)."""
    _run(asked, asked.filters(failures.JOBS, status=status, kind=kind), "retry")


@click.group("notifications")
def notifications() -> None:
    """Outgoing email and SMS."""


@notifications.command("retry")
@_common
@click.option("--status", type=click.Choice(failures.NOTIFICATION_STATUSES), default=None)
@click.option("--kind", default=None, help="Only messages of this kind (reminder, escalation, ...).")
@click.option("--channel", type=click.Choice(failures.CHANNELS), default=None)
@click.option("--recipient", default=None, help="Only those to this email or phone (exact).")
def notifications_retry(asked: Asked, status, kind, channel, recipient) -> None:
    """Send the clinic's failed and dead messages again (attempts reset; audited)."""
    filters = asked.filters(
        failures.NOTIFICATIONS, status=status, kind=kind, channel=channel, recipient=recipient
    )
    _run(asked, filters, "retry")


@click.group("webhooks")
def webhooks() -> None:
    """Outbound webhooks."""


@webhooks.command("redeliver")
@_common
@click.option("--event", "kind", default=None, help="Only deliveries of this event type.")
@click.option("--url", "recipient", default=None, help="Only subscriptions whose URL contains this text.")
def webhooks_redeliver(asked: Asked, kind, recipient) -> None:
    """Send the clinic's failed webhook deliveries again (same Idempotency-Key; audited)."""
    _run(asked, asked.filters(failures.WEBHOOKS, kind=kind, recipient=recipient), "redeliver")


COMMANDS = (jobs, notifications, webhooks)
