"""Column types of protected fields (app/platform/phi.py encrypts), and the keys they use per engine.

Wiring: the Database installs its settings' PHI key for its engine when built, and create_app and
the stream app install the resolved key (the setting, else PHI_ENCRYPTION_KEY) (`use_keys`). SQLAlchemy
hands a TypeDecorator nothing but the dialect of the connection a value goes through, one
instance per engine, so the keys are kept per dialect instance: nothing reads the Flask app, and
two apps in one process (tests, tools) each keep their own. Code outside the column types (a
blind index, an encrypted job payload) passes the keys of its session (`keys_of`).
"""

from __future__ import annotations

import json
from datetime import date
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

from app.platform import phi

_KEYS: WeakKeyDictionary[Dialect, str] = WeakKeyDictionary()


def use_keys(engine: sa.Engine, keys: str) -> None:
    """Protected values written and read through `engine` use `keys` (the settings' PHI key:
    comma-separated, the first encrypts). Called once by create_app for the app's engine."""
    _KEYS[engine.dialect] = keys


def _keys_for(dialect: Dialect) -> str:
    try:
        return _KEYS[dialect]
    except KeyError:
        raise RuntimeError("no PHI key for this database engine: create_app installs it (use_keys)") from None


def keys_of(bind) -> str:
    """The PHI keys of the database a session (an ORM or an autocommit one) or a connection talks to."""
    bound = bind.get_bind() if hasattr(bind, "get_bind") else bind  # an engine or a connection
    return _keys_for(bound.dialect)


class EncryptedString(sa.TypeDecorator):
    """A string stored as a Fernet token."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else phi.encrypt(value, keys=_keys_for(dialect))

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else phi.decrypt(value, keys=_keys_for(dialect))


class EncryptedDate(sa.TypeDecorator):
    """A date stored as a Fernet token of its ISO form."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect) -> str | None:
        return None if value is None else phi.encrypt(value.isoformat(), keys=_keys_for(dialect))

    def process_result_value(self, value: str | None, dialect) -> date | None:
        return None if value is None else date.fromisoformat(phi.decrypt(value, keys=_keys_for(dialect)))


class EncryptedJSON(sa.TypeDecorator):
    """A JSON value stored as a Fernet token of its JSON text, kept in a JSON column as a JSON
    string (the column's type does not change when a JSON column becomes encrypted). Nothing may
    query inside it in SQL."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(JSONB() if dialect.name == "postgresql" else sa.JSON())

    def process_bind_param(self, value, dialect) -> str | None:
        if value is None:
            return None
        return phi.encrypt(json.dumps(value, separators=(",", ":"), default=str), keys=_keys_for(dialect))

    def process_result_value(self, value: str | None, dialect):
        return None if value is None else json.loads(phi.decrypt(value, keys=_keys_for(dialect)))


# A plain JSON column whose values may hold tokens (a job's payload carrying an encrypted part)
# says so in its `info`: the key rotation rewrites the tokens it finds inside
# (app/domains/privacy/rotation.py).
EMBEDS_TOKENS = "embeds_phi_tokens"

ENCRYPTED_TYPES = (EncryptedString, EncryptedDate, EncryptedJSON)
"""Every column type whose values are Fernet tokens: the rotation rewrites these, the erasure
and the at-rest test recognise them."""
