"""The Reports page (/console/reports), for roles with lead:analytics: the conversion funnel, source
performance, speed to lead (with its split), show rate and follow-up response, each as a chart with
its numbers in a table and a CSV download, over a date range kept in the URL (`from`, `to`: the
clinic's local days, both included; the last 30 days by default). Then the follow-ups of the
sequences and the follow-up pass: sent today, response rate, conversion by sequence, top messages
and the leads at each step (app/domains/sequences/follow_up_report.py, as
GET /api/leads/analytics/follow-ups).

The figures are the API's reports (app/domains/analytics/service.report, the same as
/api/leads/analytics/<name>); the CSV route streams the same report's rows as the API's CSV."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from app.console import charts, wording
from app.console.auth import page
from app.domains.analytics import service as analytics
from app.domains.auth import service as auth
from app.domains.sequences import follow_up_report
from app.platform.api.injection import inject
from app.platform.csv_export import csv_response
from app.platform.errors import NotFound, ValidationFailed
from app.platform.roles import Permission

blp = Blueprint("reports", __name__, url_prefix="/reports")

DEFAULT_DAYS = 30
MAX_DAYS = 731  # two years: the longest range the benchmark measures
# The reports the page shows, in its order (the API's names); each has its CSV.
SHOWN = ("funnel", "sources", "revenue", "speed-to-lead", "consultations", "follow-up-response")
# A coordinator's own figures (/console/reports/mine): the same reports over the leads assigned to
# them. Whoever works leads (lead:update) sees their own work; the clinic's figures, everyone's,
# stay with lead:analytics.
OWN = ("speed-to-lead", "follow-up", "bookings", "consultations")


def _local_day(name: str, text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValidationFailed(name, "give a date as YYYY-MM-DD") from None


def date_range(args, zone: ZoneInfo, now: datetime) -> tuple[date, date, datetime, datetime]:
    """(first day, last day, start, end): the clinic's local days from `from` to `to` (both included)
    and the UTC instants that bound them; a bad or reversed range is a 422 naming the field."""
    today = now.astimezone(zone).date()
    last = _local_day("to", args.get("to")) or today
    first = _local_day("from", args.get("from")) or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValidationFailed("from", "must be on or before to")
    if (last - first).days >= MAX_DAYS:
        raise ValidationFailed("from", f"the range is at most {MAX_DAYS} days")
    start = datetime.combine(first, time(), tzinfo=zone)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=zone)
    return first, last, start, end


def _report(uow, actor, name: str, bounds: tuple, now: datetime, *, own: bool = False) -> dict:
    """One of the API's reports over `bounds`; `own`: over the leads assigned to the actor only."""
    start, end = bounds
    args = {"start": start, "end": end, **({"coordinator_id": actor.user_id} if own else {})}
    return analytics.report(session=uow, clinic_id=actor.clinic_id, name=name, args=args, now=now)


def _zone(uow, actor) -> ZoneInfo:
    return ZoneInfo(auth.get_clinic(session=uow, clinic_id=actor.clinic_id).timezone)


@blp.route("")
@page(Permission.ANALYTICS)
@inject
def show(*, uow, actor, now):
    first, last, start, end = date_range(request.args, _zone(uow, actor), now)
    reports = {name.replace("-", "_"): _report(uow, actor, name, (start, end), now) for name in SHOWN}
    follow_ups = follow_up_report.follow_up_report(
        session=uow, clinic_id=actor.clinic_id, period=(start, end), now=now
    )
    return render_template(
        "console/workspace/reports.html",
        first=first,
        last=last,
        range_args={"from": first.isoformat(), "to": last.isoformat()},
        bar_chart=charts.bar_chart,
        sequence_step=wording.sequence_step,
        follow_ups=follow_ups,
        **reports,
    )


@blp.route("/mine")
@page(Permission.UPDATE)
@inject
def mine(*, uow, actor, now):
    first, last, start, end = date_range(request.args, _zone(uow, actor), now)
    figures = {name.replace("-", "_"): _report(uow, actor, name, (start, end), now, own=True) for name in OWN}
    return render_template(
        "console/workspace/my_figures.html",
        first=first,
        last=last,
        range_args={"from": first.isoformat(), "to": last.isoformat()},
        **figures,
    )


@blp.route("/<name>.csv")
@page(Permission.ANALYTICS)
@inject
def download(name: str, *, uow, actor, now):
    """One report's rows as CSV, as the API's `Accept: text/csv` gives them."""
    if name not in SHOWN:
        raise NotFound(f"report {name} not found")
    first, last, start, end = date_range(request.args, _zone(uow, actor), now)
    data = _report(uow, actor, name, (start, end), now)
    return csv_response(f"{name}-{first.isoformat()}-{last.isoformat()}", data["rows"])
