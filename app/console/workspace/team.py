"""The Team page (/console/team), for whoever may assign leads: each coordinator's workload and
whether they may take leads now; a coordinator's open leads handed, one or many at once, to another
(the API's assignment, app/domains/assignment: "reassign when a coordinator is out sick")."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for

from app.console import forms
from app.console.auth import page
from app.console.workspace import team_members
from app.domains.assignment import service as assignment
from app.platform.api.injection import inject
from app.platform.db import MAX_ID
from app.platform.errors import ValidationFailed
from app.platform.roles import Permission

blp = Blueprint("team", __name__, url_prefix="/team")

MAX_REASSIGNED = team_members.LEADS_LISTED
MAX_REASON = 500  # as the API's assignment takes it (AssignIn.reason)
_ID = re.compile(r"[0-9]{1,10}", re.ASCII)


def _id(name: str, text: str | None) -> int:
    if text is None or not _ID.fullmatch(text.strip()) or int(text) > MAX_ID:
        raise ValidationFailed(name, "must be an id")
    return int(text)


@blp.route("")
@page(Permission.ASSIGN)
@inject
def show(*, uow, actor, now):
    members = team_members.workload(session=uow, actor=actor, now=now)
    chosen = _id("from", request.args["from"]) if request.args.get("from") else None
    leads = team_members.open_leads_of(session=uow, actor=actor, user_id=chosen) if chosen else []
    return render_template(
        "console/workspace/team.html",
        members=members,
        chosen=chosen,
        leads=leads,
        targets=[m for m in members if m["availability"] == "available" and m["id"] != chosen],
        action=forms.ActionForm(),
    )


@blp.route("/reassign", methods=["POST"])
@page(Permission.ASSIGN)
@inject
def reassign(*, uow, actor, now):
    """Hand the ticked leads to one coordinator, each through the API's assignment."""
    lead_ids = [_id("lead_ids", text) for text in request.form.getlist("lead_ids")]
    if not lead_ids or len(lead_ids) > MAX_REASSIGNED:
        raise ValidationFailed("lead_ids", f"tick 1 to {MAX_REASSIGNED} leads to reassign")
    to_user = _id("to_user_id", request.form.get("to_user_id"))
    reason = (request.form.get("reason") or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise ValidationFailed("reason", f"at most {MAX_REASON} characters")
    moved = assignment.reassign_leads(
        session=uow, actor=actor, lead_ids=lead_ids, user_id=to_user, reason=reason, now=now
    )
    flash(f"{len(moved)} lead{'' if len(moved) == 1 else 's'} reassigned")
    back = request.form.get("from")
    return redirect(
        url_for("console.team.show", **({"from": back} if back and _ID.fullmatch(back) else {})), 303
    )
