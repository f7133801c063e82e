"""Protected fields: encryption at rest (Fernet) and keyed blind indexes for equality search.

The key comes from the settings (`PHI_ENCRYPTION_KEY`, else the key file under var/). Several keys
may be given comma-separated: the first encrypts, all decrypt, so a key can be rotated without
rewriting every row at once (MultiFernet). The functions here are pure: the caller passes the keys.
Columns use the `Encrypted*` types of app/db/protected.py, so a model cannot store a protected
value in clear by mistake; those types find the keys create_app installed for their engine, and
code outside them passes the keys of its session (`app.db.protected.keys_of`).
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


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


def encrypt(plaintext: str, *, keys: str) -> str:
    """A Fernet token (text) for `plaintext`."""
    return _cipher_for(keys).encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, keys: str) -> str:
    """The plaintext of a Fernet token made by `encrypt`; a wrong key is an error, never garbage."""
    try:
        return _cipher_for(keys).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("a protected field cannot be decrypted with the configured PHI key") from exc


def blind_index(*, keys: str, purpose: str, scope: str, value: str) -> str:
    """HMAC-SHA256 of `value` within `scope` (e.g. a clinic): equal inputs give equal digests.

    The scope keeps two clinics' indexes of the same value different, so rows cannot be linked
    across tenants by comparing digests.
    """
    key = _blind_index_key(keys, purpose)
    return hmac.new(key, f"{scope}:{value}".encode(), hashlib.sha256).hexdigest()
