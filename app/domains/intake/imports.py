"""Bulk lead import: up to 10,000 rows (JSON or CSV) become leads in the background, once each.

The request writes a bulk job (kind `leads.import`) and its chunk jobs in one transaction and
answers 202; the chunks run on the bulk queue. Each chunk is one ledger job and one transaction:
it validates its rows, creates each new lead through `service.create_lead` (the capture an API
client's lead goes through: default stage, owner by policy, events, duplicates), writes one report
row per input row (created, duplicate, invalid with the field) and adds its counts to the bulk job.
A worker killed mid-chunk rolls the whole chunk back; the redispatch sweep sends it again, so an
import resumes where it stopped and no row is made twice. A row's `external_id` is unique per
clinic: the same row sent again (a retried request, a second file) is reported `duplicate` with
the lead it made.

The rows wait in the chunk jobs' payload sealed with the PHI key (they hold names, phones, dates of
birth): the ledger's payloads are readable at /api/jobs and must not show them in clear. A chunk
drops its rows when it finishes (in its own transaction): the leads and the report hold what came
of them, and a finished job's payload outlives them until the ledger's purge. Erasure replaces a
row of an open chunk by null (app/domains/privacy/copies.py): reported invalid, never imported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from marshmallow import ValidationError

from app.domains.bulk import service as bulk
from app.domains.bulk.models import CANCELLED, CREATED, DUPLICATE, INVALID, LEADS_IMPORT, BulkJob
from app.domains.intake import schemas, service
from app.domains.intake.models import ImportMapping
from app.domains.leads import lookups
from app.platform import phi
from app.platform.db import UnitOfWork
from app.platform.db.protected import keys_of
from app.platform.errors import Conflict, DomainError
from app.platform.roles import Actor

CHUNK_KIND = "leads.import_chunk"
CHANNEL = "import"


@dataclass(frozen=True)
class ImportOptions:
    """How an import's rows become leads: whether their events fire rules (`automation`; False for
    a historical import) and whether a row matching an open lead is refused (`reject_duplicates`)."""

    automation: bool = True
    reject_duplicates: bool = False


def start_import(
    *, session: UnitOfWork, actor: Actor, rows: list, options: ImportOptions, chunk_size: int, now: datetime
) -> BulkJob:
    """Write the import's bulk job and its chunk jobs (dispatched after commit); rows are checked later."""
    params = {
        "automation": options.automation,
        "reject_duplicates": options.reject_duplicates,
        # Who imports: the leads are created by them (their trail names them), whoever runs the chunk.
        "user_id": actor.user_id,
        "api_key_id": actor.api_key_id,
    }
    return bulk.open_bulk_job(
        session=session,
        actor=actor,
        work=bulk.BulkWork(
            kind=LEADS_IMPORT,
            items=rows,
            chunk_size=chunk_size,
            chunk_kind=CHUNK_KIND,
            chunk_payload=lambda offset, chunk: {
                "first_row": offset + 1,
                "rows": phi.encrypt(json.dumps(chunk), keys=keys_of(session)),
            },
            params=params,
            audit_after={"automation": options.automation},
        ),
        now=now,
    )


def _first_error(messages) -> tuple[str, str]:
    """(field, message) of a marshmallow error dict: the first field named, and its first message."""
    if isinstance(messages, dict) and messages:
        field = sorted(messages, key=str)[0]
        inner = messages[field]
        while isinstance(inner, dict) and inner:
            inner = inner[sorted(inner, key=str)[0]]
        text = inner[0] if isinstance(inner, list) and inner else str(inner)
        return ("row" if field == "_schema" else str(field)), str(text)
    return "row", str(messages)


def _invalid(field: str, message: str, external_id=None) -> dict:
    return {
        "outcome": INVALID,
        "field": field[:100],
        "message": message[:500],
        "external_id": external_id if isinstance(external_id, str) else None,
    }


ERASED_ROW = "the row's person was erased before it was imported"


def _checked(raw) -> tuple[dict | None, dict | None]:
    """(the row's lead fields, None), or (None, its invalid report) when the row breaks the schema."""
    if raw is None:
        return None, _invalid("row", ERASED_ROW)
    if not isinstance(raw, dict):
        return None, _invalid("row", "each row must be an object of lead fields")
    try:
        return schemas.IMPORT_ROW.load(raw), None
    except ValidationError as exc:
        return None, _invalid(*_first_error(exc.messages), external_id=raw.get("external_id"))


def _domain_field(error: DomainError) -> str:
    fields = error.errors.get("json") if isinstance(error.errors.get("json"), dict) else error.errors
    return next(iter(fields), "row") if fields else "row"


def _import_row(*, session: UnitOfWork, actor: Actor, data: dict, params: dict, now: datetime) -> dict:
    """Create one checked row's lead; its report (created, or duplicate/invalid as create_lead says)."""
    external_id = data.pop("external_id", None)
    try:
        intake = service.create_lead(
            session=session,
            actor=actor,
            new=service.NewLead(
                data=data,
                channel=CHANNEL,
                reject_duplicates=params["reject_duplicates"],
                external_id=external_id,
                automation=params["automation"],
            ),
            now=now,
        )
    except Conflict as exc:  # reject_duplicates and open leads match: nothing was written
        return {
            "outcome": DUPLICATE,
            "external_id": external_id,
            "message": exc.message[:500],
            "matches": exc.errors.get("possible_duplicates"),
        }
    except DomainError as exc:  # a field the schema could not judge (phone, source, date of birth)
        return _invalid(_domain_field(exc), exc.message, external_id)
    return {"outcome": CREATED, "lead_id": intake.lead.id, "external_id": external_id}


def run_import_chunk(*, session: UnitOfWork, job, now: datetime) -> None:
    """The chunk handler: each row created once, reported, and the counts added to the bulk job."""
    bulk_job = session.get(BulkJob, job.subject_id)
    if bulk_job is None or bulk_job.status == CANCELLED:
        return
    params = bulk_job.params
    actor = Actor(
        clinic_id=bulk_job.clinic_id,
        permissions=frozenset(),
        user_id=params.get("user_id"),
        api_key_id=params.get("api_key_id"),
    )
    checked = [_checked(raw) for raw in json.loads(phi.decrypt(job.payload["rows"], keys=keys_of(session)))]
    made = lookups.find_by_external_ids(
        session=session,
        clinic_id=bulk_job.clinic_id,
        external_ids=[data["external_id"] for data, _ in checked if data and data.get("external_id")],
    )
    reports = []
    for data, invalid in checked:
        if invalid is not None:
            report = invalid
        elif data.get("external_id") in made:
            external_id = data["external_id"]
            report = {"outcome": DUPLICATE, "lead_id": made[external_id], "external_id": external_id}
            report["message"] = f"external_id {external_id!r} was imported before"
        else:
            report = _import_row(session=session, actor=actor, data=data, params=params, now=now)
            if report["outcome"] == CREATED and report["external_id"]:
                made[report["external_id"]] = report["lead_id"]  # the same id again later in this chunk
        reports.append(report)
    first_row = job.payload["first_row"]
    bulk.record_rows(
        session=session,
        bulk_id=bulk_job.id,
        rows=[{"row": first_row + offset, **report} for offset, report in enumerate(reports)],
    )
    invalid = [
        {"row": first_row + offset, "field": r["field"], "error": r["message"]}
        for offset, r in enumerate(reports)
        if r["outcome"] == INVALID
    ]
    bulk.add_counts(
        session, bulk_job.id, done=len(reports) - len(invalid), failed=len(invalid), errors=invalid, now=now
    )
    job.payload = {**job.payload, "rows": None, "row_count": len(reports)}


# --- before an import: the preview and the clinic's remembered mapping -----------------------------

READY, REFUSED = "ready", "refused"


@dataclass(frozen=True)
class RowCheck:
    """What importing a row would do: `ready`, `duplicate` (of an earlier row or an open lead) or
    `refused` (the field and the reason the import would report)."""

    row: int
    outcome: str
    field: str | None = None
    message: str = ""


def preview_import(*, session: UnitOfWork, actor: Actor, rows: list, now: datetime) -> list[RowCheck]:
    """Each row checked as its chunk will check it (the schema, then the capture's own validation and
    duplicate finder), nothing stored; a row with the phone or email of an earlier row is a duplicate."""
    clinic = service.clinic_of(session=session, actor=actor)
    checked = [_checked(raw) for raw in rows]
    made = lookups.find_by_external_ids(
        session=session,
        clinic_id=actor.clinic_id,
        external_ids=[data["external_id"] for data, _ in checked if data and data.get("external_id")],
    )
    seen: dict[tuple[str, str], int] = {}  # (phone or email, its value) -> the first row that has it
    checks = []
    for number, (data, invalid) in enumerate(checked, start=1):
        if invalid is not None:
            checks.append(RowCheck(number, REFUSED, invalid["field"], invalid["message"]))
            continue
        data = dict(data)
        external_id = data.pop("external_id", None)
        if external_id in made:
            checks.append(
                RowCheck(number, DUPLICATE, "external_id", f"imported before as lead {made[external_id]}")
            )
            continue
        try:
            fields, found = service.checked_new_lead(session=session, clinic=clinic, data=data, now=now)
        except DomainError as exc:
            checks.append(RowCheck(number, REFUSED, _domain_field(exc), exc.message))
            continue
        checks.append(_duplicate_check(number=number, fields=fields, found=found, seen=seen))
    return checks


def _duplicate_check(*, number: int, fields: dict, found: list, seen: dict) -> RowCheck:
    """A duplicate of an earlier row (its phone or email), else of an open lead the capture finds."""
    contacts = [(name, fields[name]) for name in ("phone", "email") if fields.get(name)]
    earlier = next((key for key in contacts if key in seen), None)
    for key in contacts:
        seen.setdefault(key, number)
    if earlier is not None:
        return RowCheck(number, DUPLICATE, earlier[0], f"the same {earlier[0]} as row {seen[earlier]}")
    if found:
        match = found[0]
        said = " and ".join(match["matched"]).replace("name_dob", "name and date of birth")
        return RowCheck(
            number, DUPLICATE, match["matched"][0], f"may be open lead {match['lead_id']} (the same {said})"
        )
    return RowCheck(number, READY)


def remembered_mapping(*, session: UnitOfWork, clinic_id: int) -> dict:
    """The clinic's last mapping of spreadsheet headers to lead fields ({} before its first import)."""
    found = session.get(ImportMapping, clinic_id)
    return dict(found.columns) if found else {}


def remember_mapping(*, session: UnitOfWork, clinic_id: int, mapping: dict, now: datetime) -> None:
    """Keep what this import's headers held, over what earlier imports said of the same headers."""
    found = session.get(ImportMapping, clinic_id)
    if found is None:
        session.add(ImportMapping(clinic_id=clinic_id, columns=dict(mapping), updated_at=now))
        return
    found.columns = {**found.columns, **mapping}
    found.updated_at = now


@dataclass(frozen=True)
class MappedTable:
    """A spreadsheet's rows as lead fields, and the mapping that made them ({header: field or None})."""

    rows: list
    mapping: dict


def import_table(
    *,
    session: UnitOfWork,
    actor: Actor,
    table: MappedTable,
    options: ImportOptions,
    chunk_size: int,
    now: datetime,
) -> BulkJob:
    """The web app's import: the API's (start_import), and the columns remembered for the next file."""
    remember_mapping(session=session, clinic_id=actor.clinic_id, mapping=table.mapping, now=now)
    return start_import(
        session=session, actor=actor, rows=table.rows, options=options, chunk_size=chunk_size, now=now
    )
