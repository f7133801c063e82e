"""Protected fields: encryption at rest (Fernet) and keyed blind indexes for equality search.

The key comes from the settings (`PHI_ENCRYPTION_KEY`, else the key file under var/). Several keys
may be given comma-separated: the first encrypts, all decrypt, so a key can be rotated without
rewriting every row at once (MultiFernet). Columns use the `Encrypted*` types below, so a model
cannot store a protected value in clear by mistake: the type encrypts on the way in and decrypts
on the way out.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date
from functools import lru_cache

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _configured_keys() -> str:
    return current_app.config["SETTINGS"].resolved_phi_key()


@lru_cache(maxsize=8)
def _cipher_for(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(k.strip().encode()) for k in keys.split(",") if k.strip()])


@lru_cache(maxsize=8)
def _blind_index_key(keys: str, purpose: str) -> bytes:
    # A key of its own, derived from the encryption key: the index reveals nothing about the
    # Fernet key, and different purposes (dob, ...) cannot be correlated with each other.
    primary = keys.split(",")[0].strip().encode()
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"followup-blind-index:" + purpose.encode()
    ).derive(primary)


def encrypt(plaintext: str) -> str:
    """A Fernet token (text) for `plaintext`."""
    return _cipher_for(_configured_keys()).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext of a Fernet token made by `encrypt`; a wrong key is an error, never garbage."""
    try:
        return _cipher_for(_configured_keys()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("a protected field cannot be decrypted with the configured PHI key") from exc


def blind_index(*, purpose: str, scope: str, value: str) -> str:
    """HMAC-SHA256 of `value` within `scope` (e.g. a clinic): equal inputs give equal digests.

    The scope keeps two clinics' indexes of the same value different, so rows cannot be linked
    across tenants by comparing digests.
    """
    key = _blind_index_key(_configured_keys(), purpose)
    return hmac.new(key, f"{scope}:{value}".encode(), hashlib.sha256).hexdigest()


class EncryptedString(sa.TypeDecorator):
    """A string stored as a Fernet token."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        return None if value is None else encrypt(value)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        return None if value is None else decrypt(value)


class EncryptedDate(sa.TypeDecorator):
    """A date stored as a Fernet token of its ISO form."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: date | None, dialect) -> str | None:
        return None if value is None else encrypt(value.isoformat())

    def process_result_value(self, value: str | None, dialect) -> date | None:
        return None if value is None else date.fromisoformat(decrypt(value))
