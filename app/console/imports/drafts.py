"""The uploaded table between the import's pages: sealed with the PHI key into the pages' forms, so
the rows (names, phones) are stored nowhere before the import itself and cannot be read or altered
in the browser; a draft names its clinic, and another clinic's session cannot open it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from app.domains.intake.spreadsheets import Table
from app.platform import phi
from app.platform.db import UnitOfWork
from app.platform.db.protected import keys_of
from app.platform.errors import ValidationFailed
from app.platform.roles import Actor

UPLOAD_AGAIN = "the uploaded file could not be read back: upload it again"


@dataclass(frozen=True)
class Draft:
    file_name: str
    table: Table


def seal(*, session: UnitOfWork, actor: Actor, draft: Draft) -> str:
    document = {
        "clinic_id": actor.clinic_id,
        "file_name": draft.file_name,
        "header": draft.table.header,
        "rows": draft.table.rows,
    }
    return phi.encrypt(json.dumps(document), keys=keys_of(session))


def unseal(*, session: UnitOfWork, actor: Actor, sealed: str | None) -> Draft:
    """The draft a form carried back; a 422 naming `file` if it is missing, altered or another clinic's."""
    try:
        document = json.loads(phi.decrypt(sealed or "", keys=keys_of(session)))
    except (RuntimeError, ValueError) as exc:
        raise ValidationFailed("file", UPLOAD_AGAIN) from exc
    if document.get("clinic_id") != actor.clinic_id:
        raise ValidationFailed("file", UPLOAD_AGAIN)
    return Draft(
        file_name=document["file_name"], table=Table(header=document["header"], rows=document["rows"])
    )
