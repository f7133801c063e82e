"""Run Alembic from code: `followup db upgrade` and the tests use these."""

from __future__ import annotations

import re

from alembic import command
from alembic.config import Config

from app.platform.config import PROJECT_ROOT


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def revision(database_url: str, message: str, autogenerate: bool = True) -> None:
    command.revision(alembic_config(database_url), message=message, autogenerate=autogenerate)


# The ledger's monthly partitions (and DEFAULT) are made at run time by the purge, not by the
# models: Alembic's comparison of models and database leaves them out (their parent is compared).
_LEDGER_PARTITION = re.compile(r"scheduled_jobs_(p\d{4}_\d{2}|default)")


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic's `include_name`: everything but the ledger's partitions."""
    return not (type_ == "table" and name is not None and _LEDGER_PARTITION.fullmatch(name))
