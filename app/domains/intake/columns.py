"""Which lead field each column of a clinic's spreadsheet holds: guessed from its header ("Vorname",
"First Name" and "first_name" are the first name; "Tel.", "Mobile" and "Phone number" the phone), or
as the importer says (a mapping of header to field, None to leave a column out), and the rows as
the lead fields the import's schema checks. A header neither named in the mapping nor guessed keeps
its own name: the schema then reports each row invalid naming it, as an unknown field."""

from __future__ import annotations

import json
import re

from app.domains.intake import spreadsheets
from app.domains.intake.schemas import MAX_IMPORT_ROWS, ImportRowIn
from app.platform.errors import ValidationFailed

# The fields a column may fill, in the order a person reads them (the mapping page's choices).
FIELDS = tuple(ImportRowIn().fields)
# CSV cells are text: these columns are read as integers, and treatment_interest as a list.
ID_COLUMNS = ("source_id", "referring_provider_id", "referring_patient_id")
LIST_SEPARATORS = (";", "|", ",")

# Headers as people write them (English, German, French, Spanish), folded by `_folded`.
SYNONYMS = {
    "first_name": ("firstname", "first", "givenname", "forename", "vorname", "prenom", "nombre"),
    "last_name": ("lastname", "last", "surname", "familyname", "nachname", "familienname", "nom", "apellido",
                  "apellidos"),
    "phone": ("phone", "phonenumber", "tel", "telephone", "telefon", "telefonnummer", "mobile", "mobil",
              "mobilephone", "cell", "cellphone", "handy", "mobilnummer", "telefono", "portable"),
    "phone_alt": ("phone2", "otherphone", "alternatephone", "telefon2", "festnetz", "homephone"),
    "email": ("email", "emailaddress", "mail", "emailadresse", "courriel", "correo"),
    "treatment_interest": ("treatment", "treatmentinterest", "interest", "behandlung", "behandlungswunsch",
                           "traitement", "tratamiento"),
    "notes": ("notes", "note", "comment", "comments", "notiz", "notizen", "bemerkung", "bemerkungen",
              "kommentar", "remarques", "notas"),
    "patient_first_name": ("patientfirstname", "childfirstname", "childname", "kind", "vornamekind",
                           "patientvorname"),
    "patient_last_name": ("patientlastname", "childlastname", "nachnamekind", "patientnachname"),
    "patient_dob": ("dob", "dateofbirth", "birthdate", "birthday", "patientdob", "geburtsdatum",
                    "geburtstag", "datedenaissance", "fechadenacimiento"),
    "city": ("city", "town", "stadt", "ort", "wohnort", "ville", "ciudad"),
    "postal_code": ("zip", "zipcode", "postalcode", "postcode", "plz", "postleitzahl", "codepostal"),
    "address_line1": ("address", "street", "strasse", "adresse", "anschrift", "direccion"),
    "external_id": ("id", "externalid", "patientid", "patientnumber", "kundennummer", "patientennummer"),
}  # fmt: skip


def _folded(header: str) -> str:
    """A header as the synonyms are written: lower case, letters and digits only, ß and umlauts spelt out."""
    text = header.casefold().replace("ß", "ss")
    for umlaut, spelt in (("ä", "a"), ("ö", "o"), ("ü", "u"), ("é", "e"), ("è", "e"), ("ñ", "n")):
        text = text.replace(umlaut, spelt)
    return re.sub(r"[^a-z0-9]", "", text)


GUESSES = {_folded(name): name for name in FIELDS} | {
    synonym: field for field, synonyms in SYNONYMS.items() for synonym in synonyms if field in FIELDS
}


def guess(header: str) -> str | None:
    """The lead field a column's header names, or None when it names none the engine knows."""
    return GUESSES.get(_folded(header))


def resolve(header: list[str], mapping: dict | None) -> list[str | None]:
    """Each column's field: the mapping's choice (None: left out), else the guess, else its own header."""
    given = check_mapping(header, mapping or {})
    return [given[name] if name in given else guess(name) or name or None for name in header]


def check_mapping(header: list[str], mapping: dict) -> dict:
    """A mapping of header to field (or None), checked: a 422 naming `mapping` and what is wrong."""
    for name, field in mapping.items():
        if name not in header:
            raise ValidationFailed("mapping", f"the file has no column {name!r}")
        if field not in (None, "") and field not in FIELDS:
            raise ValidationFailed("mapping", f"{field!r} (for column {name!r}) is not a lead field")
    return {name: field or None for name, field in mapping.items()}


def check_header(header: list[str], columns: list[str | None]) -> None:
    """Refuse a table whose first line names no lead field: a file without its header line."""
    if not any(field in FIELDS for field in columns):
        shown = ", ".join(repr(name) for name in header[:4] if name)
        raise ValidationFailed(
            "file",
            "the first line must name the columns (First name, Last name, Phone, Email ...): "
            f"none of {shown or 'its cells'} is a column name the import knows",
        )


def check_once(columns: list[str | None]) -> None:
    """Refuse two columns filling one field (which of them would the lead keep?)."""
    known = [field for field in columns if field in FIELDS]
    twice = sorted({field for field in known if known.count(field) > 1})
    if twice:
        raise ValidationFailed("mapping", f"two columns fill {twice[0]}: leave one of them out")


def _cell(field: str, value: str):
    if field in ID_COLUMNS and value.isdigit():
        return int(value)
    if field == "treatment_interest":
        for separator in LIST_SEPARATORS:
            if separator in value:
                return [part.strip() for part in value.split(separator) if part.strip()]
        return [value]
    return value


def lead_rows(table: spreadsheets.Table, columns: list[str | None]) -> list[dict]:
    """Each row as lead fields (the import's rows): empty cells and left-out columns dropped."""
    rows = []
    for cells in table.rows:
        row = {}
        for index, cell in enumerate(cells):
            field = columns[index] if index < len(columns) else f"column {index + 1}"
            if field and cell:
                row[field] = _cell(field, cell)
        rows.append(row)
    return rows


def rows_of(data: bytes, mapping: dict | None) -> list[dict]:
    """An uploaded spreadsheet's rows as lead fields, its columns mapped (given, else guessed)."""
    table = spreadsheets.read_table(data)
    columns = resolve(table.header, mapping)
    check_header(table.header, columns)
    check_once(columns)
    return lead_rows(table, columns)


def mapping_of(text: str | None) -> dict | None:
    """The `mapping` a request gives, as JSON text: {header: field or null}; a 422 naming it if not."""
    if not text:
        return None
    try:
        mapping = json.loads(text)
    except ValueError as exc:
        raise ValidationFailed("mapping", "give a JSON object of column header to lead field") from exc
    if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
        raise ValidationFailed("mapping", "give a JSON object of column header to lead field (or null)")
    return mapping


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SPREADSHEET_TYPES = ("text/csv", "application/csv", XLSX_TYPE)


def import_rows(*, content_type: str, body: bytes, upload: bytes | None, mapping: dict | None) -> list:
    """The rows of an import request: a JSON array, a spreadsheet body (CSV or XLSX), or a
    spreadsheet in a form's `file`; a spreadsheet's columns mapped by `mapping` or guessed.

    Only the request's shape is checked here (a list of at most MAX_IMPORT_ROWS); each row's fields
    are checked when its chunk runs, and reported per row.
    """
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime == "multipart/form-data":
        if upload is None:
            raise ValidationFailed("file", "upload the CSV or Excel file as the form field `file`")
        rows = rows_of(upload, mapping)
    elif mime in SPREADSHEET_TYPES:
        rows = rows_of(body, mapping)
    elif mime == "application/json" or mime.endswith("+json"):
        try:
            rows = json.loads(body)
        except ValueError as exc:
            raise ValidationFailed("json", "the body is not valid JSON") from exc
        if not isinstance(rows, list):
            raise ValidationFailed("json", "send a JSON array of leads")
    else:
        raise ValidationFailed(
            "body", "send a JSON array (application/json), a CSV (text/csv), an Excel workbook (.xlsx) or a "
            "form with the file as `file`"
        )  # fmt: skip
    if not rows:
        raise ValidationFailed("body", "nothing to import: no rows")
    if len(rows) > MAX_IMPORT_ROWS:
        raise ValidationFailed("body", f"at most {MAX_IMPORT_ROWS:,} rows per import")
    return rows
