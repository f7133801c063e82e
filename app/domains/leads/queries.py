"""Leads' hot statements, compiled once (`Frozen`): the duplicate probe every new lead runs."""

from __future__ import annotations

import sqlalchemy as sa

from app.domains.leads.models import OPEN_STATUSES, Lead
from app.platform.db import Frozen


def _duplicate_candidates_statement() -> sa.CompoundSelect:
    # Built once, with a fixed set of parameters (a probe has at most two phones), so it is compiled
    # once and prepared by the driver: it runs for every new lead.
    #
    # One equality per arm, each on its own partial index, joined by UNION (which also drops a lead
    # matched twice). A single WHERE with OR reads the same but leaves the plan to table statistics:
    # before the table's first ANALYZE (a new database's first minute) PostgreSQL reads every lead of
    # the clinic through (clinic_id, created_at) and filters, a capture cost that grows with each
    # lead captured (docs/architecture/hot-paths.md, "Concurrent captures").
    leads = Lead.__table__
    phones = [sa.bindparam("phone_1", type_=sa.String), sa.bindparam("phone_2", type_=sa.String)]
    columns = (
        leads.c.id,
        leads.c.phone,
        leads.c.phone_alt,
        leads.c.email,
        leads.c.patient_dob_index,
        leads.c.first_name,
        leads.c.last_name,
        leads.c.patient_first_name,
        leads.c.patient_last_name,
    )

    def open_leads_where(matched) -> sa.Select:
        return sa.select(*columns).where(
            leads.c.clinic_id == sa.bindparam("clinic_id"),
            matched,
            leads.c.deleted_at.is_(None),
            leads.c.status.in_([sa.literal_column(f"'{s.value}'") for s in OPEN_STATUSES]),
            leads.c.id != sa.bindparam("exclude_id"),
        )

    return (
        sa.union(
            *(
                open_leads_where(column == phone)
                for column in (leads.c.phone, leads.c.phone_alt)
                for phone in phones
            ),
            open_leads_where(leads.c.email == sa.bindparam("email", type_=sa.String)),
            open_leads_where(leads.c.patient_dob_index == sa.bindparam("dob_index", type_=sa.String)),
            # The DOB's index under the previous key, while a key rotation runs (null otherwise).
            open_leads_where(leads.c.patient_dob_index == sa.bindparam("dob_index_prior", type_=sa.String)),
        )
        .order_by(sa.literal_column("id"))
        .limit(200)
    )


_DUPLICATE_CANDIDATES = Frozen(_duplicate_candidates_statement())


def duplicate_candidates(session, params: dict) -> list[tuple]:
    """(id, phone, phone_alt, email, patient_dob_index, first_name, last_name, patient_first_name,
    patient_last_name) of the clinic's open leads matching a probe (see `find_duplicates`)."""
    return _DUPLICATE_CANDIDATES.execute(session.connection(), params)
