"""The layout rules of DESIGN.md that a grep can check, over app/'s source text (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"

# Domains whose dialect-specific SQL already lives in their queries.py; the lead adds the others.
DIALECT_FREE_DOMAINS = ("intake", "assignment", "pipeline", "activities", "events", "leads", "scheduling")


def _sources() -> dict[str, str]:
    return {str(path.relative_to(APP.parent)): path.read_text() for path in sorted(APP.rglob("*.py"))}


def _speed_home(name: str) -> bool:
    """app/db/ and a domain's queries.py: the only homes of the fast-path machinery."""
    return name.startswith("app/db/") or name.endswith("/queries.py")


def test_the_fast_write_path_is_used_only_from_app_db_and_queries_modules():
    machinery = re.compile(r"\b(Frozen|RowBatch|AutocommitSession|allocate_ids)\b")
    offenders = [
        name for name, text in _sources().items() if machinery.search(text) and not _speed_home(name)
    ]
    assert offenders == [], f"speed machinery outside app/db/ and queries.py: {offenders}"


def test_the_domains_so_far_have_no_dialect_branch_outside_queries_modules():
    offenders = [
        name
        for name, text in _sources().items()
        if "dialect" in text and not _speed_home(name) and name.split("/")[1] in DIALECT_FREE_DOMAINS
    ]
    assert offenders == [], f"dialect-specific code outside queries.py: {offenders}"


def test_no_batch_form_twin_of_a_fact_builder_comes_back():
    twins = ("start_stage_history", "add_first_owner", "add_to_batch", "add_processing_job", "add_due_now")
    found = [
        (name, twin) for name, text in _sources().items() for twin in twins if re.search(rf"\b{twin}\b", text)
    ]
    assert found == [], f"a batch twin of a fact's builder: {found}"


def test_intake_asks_no_question_about_its_session():
    text = (APP / "intake" / "service.py").read_text()
    assert "in_autocommit" not in text and "postgresql" not in text and "dialect" not in text
