"""PHI key rotation: every protected value re-encrypted under the first key, blind indexes rebuilt.

Put the new key first in PHI_ENCRYPTION_KEY and keep the old one after it (`NEW,OLD`), restart the
processes (they now write under NEW and read both), then run `followup phi rotate-key`. It walks
every table with an encrypted column (the models' `Encrypted*` columns: nothing is listed by hand)
in primary-key order, a batch per transaction, and rewrites each value not yet under the first key
(MultiFernet.rotate), with the blind indexes beside them (a date of birth's, a message recipient's).
Tokens also live inside plain JSON columns (an import's rows wait encrypted in its chunk jobs'
payload): a JSON column whose values may hold tokens says so (`info={EMBEDS_TOKENS: True}`, as
scheduled_jobs.payload does), and every token found in it, at any depth, is rewritten too, so no
queued work is lost with OLD. Progress is recorded per table (`phi_rotation_progress`), so a stopped
run continues where it was; a run for a different first key starts over.

The service keeps running meanwhile: each value is written back only if it still holds the token
that was read (compare-and-set), so a concurrent change (already under the first key) is never
overwritten with an older value; duplicate detection by date of birth matches a row's index under
any configured key (app/domains/leads/duplicates.py). When the run reports done, remove OLD.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from app.domains.outbound import service as notifications
from app.domains.privacy.models import RotationProgress
from app.platform import phi
from app.platform.db import Base, JSONType
from app.platform.db.protected import EMBEDS_TOKENS, ENCRYPTED_TYPES, EncryptedJSON

DOB_COLUMN, DOB_INDEX_COLUMN = "patient_dob_encrypted", "patient_dob_index"
# A message's recipient and its blind index (app/domains/outbound/recipients.py), rebuilt beside it.
TO_COLUMN, TO_INDEX_COLUMN = "to_address_encrypted", "to_address_index"
TOKEN = re.compile(r"^gAAAAA[A-Za-z0-9_\-]+=*$")  # a Fernet token's text (version byte 0x80)


@dataclass(frozen=True)
class Target:
    """A table's primary key and its encrypted columns, read as the tokens they store (no decryption):
    text columns as text, encrypted JSON columns as the JSON string holding the token."""

    name: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    json_columns: tuple[str, ...] = ()
    embedding: tuple[str, ...] = ()  # plain JSON columns whose values may hold tokens, read as JSON

    @property
    def table(self) -> sa.TableClause:
        indexes = ((DOB_INDEX_COLUMN,) if self.has_dob else ()) + ((TO_INDEX_COLUMN,) if self.has_to else ())
        names = dict.fromkeys(self.key + self.columns + self.embedding + indexes)
        return sa.table(self.name, *(sa.column(n, self._type(n)) for n in names))

    @property
    def read(self) -> tuple[str, ...]:
        """The columns a batch reads besides the key."""
        return self.columns + self.embedding

    def _type(self, name: str):
        if name in self.key:
            return None
        return JSONType if name in self.json_columns + self.embedding else sa.Text

    @property
    def has_dob(self) -> bool:
        return DOB_COLUMN in self.columns

    @property
    def has_to(self) -> bool:
        return self.name == "notifications" and TO_COLUMN in self.columns


def targets() -> list[Target]:
    """Every table with encrypted columns, from the models' metadata."""
    found = []
    for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
        columns = tuple(c.name for c in table.columns if isinstance(c.type, ENCRYPTED_TYPES))
        json_columns = tuple(c.name for c in table.columns if isinstance(c.type, EncryptedJSON))
        embedding = tuple(c.name for c in table.columns if c.info.get(EMBEDS_TOKENS))
        if columns or embedding:
            key = tuple(c.name for c in table.primary_key.columns)
            found.append(Target(table.name, key, columns, json_columns, embedding))
    return found


def fingerprint(keys: str) -> str:
    """Names the first key without revealing it (progress belongs to one target key)."""
    return hashlib.sha256(phi.key_list(keys)[0].encode()).hexdigest()[:16]


def rotate_batch(
    session, *, target: Target, keys: str, after: list | None, size: int
) -> tuple[list | None, int]:
    """Rewrite up to `size` rows after primary key `after`; returns (the last key seen, rows changed).
    The last key is None when the table is done."""
    table = target.table
    key_columns = [table.c[k] for k in target.key]
    query = sa.select(*key_columns, *(table.c[c] for c in target.read)).order_by(*key_columns).limit(size)
    if after is not None:
        single = len(key_columns) == 1
        query = query.where(
            key_columns[0] > after[0] if single else sa.tuple_(*key_columns) > sa.tuple_(*after)
        )
    rows = session.execute(query).all()
    changed = 0
    for row in rows:
        pk, values = (
            list(row[: len(key_columns)]),
            dict(zip(target.read, row[len(key_columns) :], strict=True)),
        )
        changed += _rotate_row(session, target, keys, pk, values)
    if len(rows) < size:
        return None, changed
    return list(rows[-1][: len(key_columns)]), changed


def _rotate_row(session, target: Target, keys: str, pk: list, values: dict) -> int:
    table = target.table
    where_pk = [table.c[k] == v for k, v in zip(target.key, pk, strict=True)]
    changed = 0
    for column, token in values.items():
        if column in target.embedding:
            rotated = rotate_embedded(token, keys)
            if rotated == token:
                continue
            new_values = {column: rotated}
        elif token is None or phi.is_current(token, keys=keys):
            continue
        else:
            new_values = {column: phi.rotate(token, keys=keys)}
        if column == DOB_COLUMN and target.name == "leads":
            new_values[DOB_INDEX_COLUMN] = _dob_index(session, pk, token, keys)
        if column == TO_COLUMN and target.has_to:
            new_values[TO_INDEX_COLUMN] = _recipient_index(session, pk, token, keys)
        held = sa.literal(token, table.c[column].type)  # in the column's own type: JSON compares as JSON
        result = session.execute(
            sa.update(table).where(*where_pk, table.c[column] == held).values(**new_values)
        )
        changed += result.rowcount
    return changed


def rotate_embedded(value, keys: str):
    """`value` (JSON) with every token in it, at any depth, under the first key; unchanged (the
    same object) when none needed it."""
    if isinstance(value, str):
        if TOKEN.match(value) and not phi.is_current(value, keys=keys):
            return phi.rotate(value, keys=keys)
        return value
    if isinstance(value, dict):
        rotated = {key: rotate_embedded(item, keys) for key, item in value.items()}
        return value if all(rotated[k] is value[k] for k in value) else rotated
    if isinstance(value, list):
        rotated = [rotate_embedded(item, keys) for item in value]
        return value if all(a is b for a, b in zip(rotated, value, strict=True)) else rotated
    return value


def _recipient_index(session, pk: list, token: str, keys: str) -> str | None:
    clinic_id = session.scalar(sa.text("SELECT clinic_id FROM notifications WHERE id = :id"), {"id": pk[0]})
    address = phi.decrypt(token, keys=keys)
    return notifications.recipient_index(keys=keys, clinic_id=clinic_id, address=address)


def _dob_index(session, pk: list, token: str, keys: str) -> str:
    clinic_id = session.scalar(sa.text("SELECT clinic_id FROM leads WHERE id = :id"), {"id": pk[0]})
    dob = date.fromisoformat(phi.decrypt(token, keys=keys))
    return phi.blind_index(keys=keys, purpose="patient_dob", scope=str(clinic_id), value=dob.isoformat())


def rotate_all(
    *,
    db,
    keys: str,
    now: Callable[[], datetime],
    size: int = 500,
    report: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Run (or continue) the rotation to the first of `keys` over every target; returns rows
    rewritten per table. Each batch commits with its progress, so a stopped run loses one batch."""
    if len(phi.key_list(keys)) < 1:
        raise RuntimeError("no PHI key configured")
    mark, totals = fingerprint(keys), {}
    for target in targets():
        with db.unit_of_work() as session:
            progress = session.get(RotationProgress, target.name)
            if progress is None or progress.key_fingerprint != mark:
                progress = session.merge(
                    RotationProgress(
                        table_name=target.name, key_fingerprint=mark, after=None, done=False, updated_at=now()
                    )
                )
            after, done = progress.after, progress.done
        totals[target.name] = 0
        while not done:
            with db.unit_of_work() as session:
                after, changed = rotate_batch(session, target=target, keys=keys, after=after, size=size)
                done = after is None
                session.merge(
                    RotationProgress(
                        table_name=target.name, key_fingerprint=mark, after=after, done=done, updated_at=now()
                    )
                )
            totals[target.name] += changed
            if report:
                report(target.name, changed)
    return totals
