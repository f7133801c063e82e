"""Analytics endpoints: JSON by default, CSV for `Accept: text/csv`."""

from flask import request
from flask.views import MethodView

from app.domains.analytics import schemas, service
from app.platform.access import requires
from app.platform.api import make_blueprint
from app.platform.api.injection import inject
from app.platform.csv_export import csv_response
from app.platform.roles import Permission

blp = make_blueprint("analytics", "Lead analytics (read-only reports)")


def _wants_csv() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
    return best == "text/csv"


def _json(data: dict) -> dict:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in data.items()}


def _report_view(name: str, summary: str):
    class Report(MethodView):
        @requires(Permission.ANALYTICS)
        @blp.arguments(schemas.ReportArgs, location="query")
        @blp.response(200)
        @inject
        def get(self, args, *, uow, actor, now):
            data = service.report(
                session=uow,
                clinic_id=actor.clinic_id,
                name=name,
                args=args,
                now=now,
            )
            return csv_response(name, data["rows"]) if _wants_csv() else _json(data)

    Report.get.__doc__ = (
        summary + f"\n\nSend `Accept: text/csv` for CSV.\n\nPermission: `{Permission.ANALYTICS}`."
    )
    Report.__name__ = f"Report_{name.replace('-', '_')}"
    return Report


for _name, _summary in (
    ("funnel", "Leads reaching each stage, stage-to-stage conversion, median days in stage."),
    ("sources", "Per source: leads, conversions, rate, prorated spend, cost per lead and per acquisition."),
    (
        "coordinators",
        "Per coordinator: leads, contacted within 5 minutes, conversions, open and overdue tasks.",
    ),
    ("lost-reasons", "Lost leads by reason."),
    (
        "hesitation-reasons",
        "Leads pending a decision by why they hesitate (cost, timing, second opinion, approval, "
        "financing, other): count, share and conversions.",
    ),
    ("speed-to-lead", "Minutes from capture to first outbound contact: median, p90, share within 5 minutes."),
    ("follow-up", "Follow-up effectiveness: tasks completed on time, replies to automated messages."),
    (
        "follow-up-response",
        "Follow-up response per channel (sms, email, whatsapp, instagram) and per sequence: automated "
        "messages sent in the range, replied within the reply window, the rate and the median hours to the "
        "family's first reply; per channel also the median minutes from a family's first message to the "
        "clinic's first reply. CSV: one row per channel, then per sequence.",
    ),
    (
        "time-to-convert",
        "Days from capture to conversion of the leads converted in the range: average and median, "
        "overall and per source.",
    ),
    (
        "lead-velocity",
        "New leads per week in the range against the previous period of the same length, and the % change.",
    ),
    (
        "source-trends",
        "Per UTC month and source: leads captured and conversions made in the range (with their revenue).",
    ),
    (
        "consultations",
        "Consultations that started in the range: show rate (attended against due, by source, coordinator, "
        "local weekday, reminded or not, and how it was booked), treatment acceptance (attended -> accepted "
        "treatment) and "
        "no-show recovery (no-shows rebooked within 14 days).",
    ),
    (
        "bookings",
        "Consultations booked in the range by how (staff, webhook, self: the family on the booking page) "
        "with their share, and hours from capture to a lead's first booking (median, p90), overall and "
        "by way. The show rate by way is the consultations report's `by.booked_via`.",
    ),
    (
        "revenue",
        "Per source: conversions in the range, recorded treatment value (revenue), prorated spend "
        "(the source's monthly_cost) and ROI = (revenue - spend) / spend.",
    ),
):
    blp.add_url_rule(f"/leads/analytics/{_name}", view_func=_report_view(_name, _summary), endpoint=_name)
