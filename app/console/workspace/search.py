"""The navigation's search box (every page, for a role that may read leads): as the user types, the
first leads matching it, as an HTML fragment of listbox options (static/workspace/search.js). The
API's own search answers it (`GET /api/leads/search`: same fields, same PHI policy, audited), dumped
through the API's schema, so a front desk user sees here exactly what the API shows it."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from app.console.auth import page
from app.domains.leads import listing
from app.domains.leads.schemas import LeadMatchOut
from app.platform.api.injection import inject
from app.platform.roles import Permission

blp = Blueprint("search", __name__)
SHOWN = 8  # what fits under the box on a phone without scrolling
MATCH = LeadMatchOut(many=True)


@blp.route("/search")
@page(Permission.READ)
@inject
def matches(*, uow, actor, now):
    typed = request.args.get("q", "")[:100]
    if len(typed.strip()) < 2:  # the API's 422: too little to search; the box simply shows nothing
        found = []
    else:
        found = listing.search_leads(session=uow, actor=actor, q=typed, limit=SHOWN, now=now)
    # A patient's age to this year in UTC: a day off at New Year, not worth reading the clinic a keystroke.
    return render_template("console/workspace/_search_results.html", matches=MATCH.dump(found), year=now.year)
