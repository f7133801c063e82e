"""The pipeline board (/console/board): the stages as columns, a card per lead, filters kept in the
URL; a card moves by drag and drop (a fetch() POST with the CSRF token) or by the page's one move
form, opened for a card by its "Move…" link (a dialog with the script; without it the link opens the
move page, GET /console/board/leads/<id>/stage, holding the same form), all through the API's stage
change (pipeline.service.change_stage). The form offers a lead only the stages it may move to, the
next one first and chosen (pipeline.service.move_targets); a move the pipeline refuses all the same
(a card dragged backwards) shows the service's reason beside the card."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Blueprint, flash, jsonify, redirect, render_template, request, session, url_for
from marshmallow import ValidationError as MarshmallowError

from app.console import forms, wording
from app.console.auth import page
from app.console.workspace import board_cards
from app.domains.leads import service as leads
from app.domains.leads.models import HesitationReason, LostReason
from app.domains.pipeline import board as pipeline_board
from app.domains.pipeline import schemas as pipeline_schemas
from app.domains.pipeline import service as pipeline
from app.platform.api.injection import inject
from app.platform.db import MAX_ID
from app.platform.errors import DomainError, ValidationFailed
from app.platform.roles import Permission

blp = Blueprint("board", __name__, url_prefix="/board")

FILTER_KEYS = ("owner", "source", "age", "interest")
_REFUSAL = "board_refusal"  # the session's note of a refused move, shown beside its card once
_REFUSED = (409, 422)  # the pipeline's rules refusing a move, and a move missing its reason
_ID = re.compile(r"[0-9]{1,10}", re.ASCII)


def _id(name: str, text: str) -> int:
    if not _ID.fullmatch(text) or int(text) > MAX_ID:
        raise ValidationFailed(name, "must be an id")
    return int(text)


def filters_from(args) -> pipeline_board.BoardFilters:
    """The board's filters from the query string (empty means any); a bad one is a 422 naming it."""
    given = {key: (args.get(key) or "").strip() or None for key in FILTER_KEYS}
    owner = given["owner"]
    if owner is not None and owner not in ("me", "none"):
        owner = str(_id("owner", owner))
    return pipeline_board.BoardFilters(
        owner=owner,
        source_id=_id("source", given["source"]) if given["source"] else None,
        age=given["age"],
        treatment_interest=given["interest"],
    )


def _kept_filters(args) -> dict:
    """The request's board filters, to carry into the next URL."""
    return {key: args[key] for key in FILTER_KEYS if args.get(key)}


def _move_form(stages: list, filters: dict, current: str | None = None) -> dict:
    """What the one move form draws: the stages to choose (a lead in `current`: only those it may
    move to, the next first; the board's dialog: every stage, narrowed for each card by the script
    from its column's `targets`), the reasons, the CSRF token, and the query string that keeps the
    board's filters through a move."""
    targets = pipeline.move_targets(stages)
    names = {stage.slug: stage.name for stage in stages}
    offered = targets.get(current, []) if current is not None else list(names)
    return {
        "stages": [(slug, names[slug]) for slug in offered],
        "targets": {slug: " ".join(allowed) for slug, allowed in targets.items()},
        "why_missing": wording.MOVE_NEEDS_WHY,
        "no_move": wording.NO_MOVE,
        "lost_reasons": [r.value for r in LostReason],
        "hesitation_reasons": [r.value for r in HesitationReason],
        "action": forms.ActionForm(),
        "kept_query": f"?{urlencode(filters)}" if filters else "",
    }


@blp.route("")
@page(Permission.READ)
@inject
def show(*, uow, actor, now):
    filters = filters_from(request.args)
    shown = board_cards.board_page(session=uow, actor=actor, filters=filters, now=now)
    kept = _kept_filters(request.args)
    return render_template(
        "console/workspace/board.html",
        **shown,
        **_move_form([entry["column"].stage for entry in shown["columns"]], kept),
        filters=kept,
        may_move=actor.can(Permission.UPDATE),
        refusal=session.pop(_REFUSAL, None),
    )


@blp.route("/leads/<int:lead_id>/stage")
@page(Permission.UPDATE)
@inject
def move_page(lead_id: int, *, uow, actor, now):
    """The move form for one card, on a page of its own: a card's "Move…" link without the script."""
    lead = leads.read_lead(session=uow, actor=actor, lead_id=lead_id, now=now)
    stages = pipeline.list_stages(session=uow, clinic_id=actor.clinic_id)
    kept = _kept_filters(request.args)
    now_in = next((stage.name for stage in stages if stage.slug == lead.pipeline_stage), lead.pipeline_stage)
    return render_template(
        "console/workspace/board_move.html",
        **_move_form(stages, kept, current=lead.pipeline_stage),
        lead={
            "id": lead.id,
            "name": f"{lead.first_name} {lead.last_name}".strip(),
            "stage": lead.pipeline_stage,
        },
        now_in=now_in,
        filters=kept,
    )


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


_STAGE_CHANGE = pipeline_schemas.StageChangeIn()


def _stage_change(form) -> dict:
    """The form read by the API's own schema (the same lost and hesitation reasons); a bad field is a
    422 naming it."""
    given = {key: form.get(key) or None for key in ("stage", "reason", "hesitation_reason")}
    try:
        return _STAGE_CHANGE.load({key: value for key, value in given.items() if value is not None})
    except MarshmallowError as error:
        field, messages = next(iter(error.normalized_messages().items()))
        text = "; ".join(messages) if isinstance(messages, list) else str(messages)
        raise ValidationFailed(field, text) from error


@blp.route("/leads/<int:lead_id>/stage", methods=["POST"])
@page(Permission.UPDATE)
@inject
def move(lead_id: int, *, uow, actor, now):
    """Move a card: the API's stage change (POST /api/leads/<id>/stage), its refusals shown as such."""
    change = pipeline.StageChange(**_stage_change(request.form))
    lead = pipeline.change_stage(session=uow, actor=actor, lead_id=lead_id, change=change, now=now)
    if _wants_json():
        return jsonify({"lead_id": lead.id, "stage": lead.pipeline_stage})
    flash(f"Lead {lead.id} moved to {lead.pipeline_stage.replace('_', ' ')}")
    return redirect(url_for("console.board.show", **_kept_filters(request.args)), 303)


def _said(error: DomainError) -> str:
    """The refusal as a person reads it: the field it is about first, where there is one."""
    fields = (error.errors or {}).get("json") or {}
    if not fields:
        return error.message
    return "; ".join(f"{name}: {'; '.join(map(str, messages))}" for name, messages in fields.items())


@blp.errorhandler(DomainError)
def _refused(error: DomainError):
    """A move the pipeline refuses (a rule: 409; a missing reason: 422) is said beside the card;
    anything else (403, another clinic's lead: 404, a bad filter) is the console's error page."""
    if request.endpoint != "console.board.move" or error.status not in _REFUSED:
        return render_template("console/error.html", error=error), error.status, error.headers
    said = _said(error)
    if _wants_json():
        return jsonify({"error": said}), error.status
    session[_REFUSAL] = {"lead_id": request.view_args["lead_id"], "message": said}
    return redirect(url_for("console.board.show", **_kept_filters(request.args)), 303)
