"""Protected fields: encryption at rest (Fernet) and keyed blind indexes for equality search.

The key comes from the settings (`PHI_ENCRYPTION_KEY`; `make run` writes a development one to
var/phi.key and sets it). Several keys
may be given comma-separated: the first encrypts, all decrypt (MultiFernet), so a key is rotated
by putting the new one first and running `followup phi rotate-key` (app/domains/privacy/rotation.py), which
rewrites every protected value and blind index under it while the service runs. The functions here
are pure: the caller passes the keys. Columns use the `Encrypted*` types of app/platform/db/protected.py,
so a model cannot store a protected value in clear by mistake; those types find the keys installed
for their engine (`use_keys`), and code outside them passes the keys of its session
(`app.platform.db.protected.keys_of`).

Blind indexes are keyed per key: `blind_index` gives the digest under the first (current) key,
`blind_indexes` under every configured key, so a lookup during a rotation finds rows whose index
was written under the previous key.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def key_list(keys: str) -> list[str]:
    """The configured keys, first (the encrypting one) first."""
    return [k.strip() for k in keys.split(",") if k.strip()]


@lru_cache(maxsize=8)
def _cipher_for(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in key_list(keys)])


@lru_cache(maxsize=8)
def _primary_cipher(keys: str) -> Fernet:
    return Fernet(key_list(keys)[0].encode())


@lru_cache(maxsize=32)
def _derived_key(key: str, purpose: str) -> bytes:
    # A key of its own, derived from one encryption key: the index reveals nothing about the
    # Fernet key, and different purposes (dob, ...) cannot be correlated with each other.
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"followup-blind-index:" + purpose.encode()
    ).derive(key.encode())


def encrypt(plaintext: str, *, keys: str) -> str:
    """A Fernet token (text) for `plaintext`."""
    return _cipher_for(keys).encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, keys: str) -> str:
    """The plaintext of a Fernet token made by `encrypt`; a wrong key is an error, never garbage."""
    try:
        return _cipher_for(keys).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("a protected field cannot be decrypted with the configured PHI key") from exc


def rotate(token: str, *, keys: str) -> str:
    """`token` re-encrypted under the first key (MultiFernet.rotate); the plaintext never leaves."""
    try:
        return _cipher_for(keys).rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise RuntimeError("a protected field cannot be decrypted with the configured PHI key") from exc


def is_current(token: str, *, keys: str) -> bool:
    """Whether `token` is already encrypted under the first key (a rotation may skip it)."""
    try:
        _primary_cipher(keys).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def _digest(key: str, purpose: str, scope: str, value: str) -> str:
    return hmac.new(_derived_key(key, purpose), f"{scope}:{value}".encode(), hashlib.sha256).hexdigest()


def blind_index(*, keys: str, purpose: str, scope: str, value: str) -> str:
    """HMAC-SHA256 of `value` within `scope` (e.g. a clinic) under the first key: equal inputs
    give equal digests.

    The scope keeps two clinics' indexes of the same value different, so rows cannot be linked
    across tenants by comparing digests.
    """
    return _digest(key_list(keys)[0], purpose, scope, value)


def blind_indexes(*, keys: str, purpose: str, scope: str, value: str) -> list[str]:
    """The digests of `value` under every configured key, the first key's first: what a lookup
    matches while a rotation has rewritten some rows and not yet others."""
    return [_digest(key, purpose, scope, value) for key in key_list(keys)]
