"""Passwords: argon2 hashes and the one policy every way of setting a password goes through."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 1024

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("timing-equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches; a user without a password matches nothing (after the same work,
    so a response's timing does not tell which emails have a password)."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def check_policy(password: str, *, email: str | None, field: str = "password") -> None:
    """ValidationFailed naming `field` for a password too short, too long, one repeated character,
    or the user's own email address (or its part before the @)."""
    if len(password) < MIN_LENGTH:
        raise ValidationFailed(field, f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise ValidationFailed(field, f"use at most {MAX_LENGTH} characters")
    if len(set(password)) == 1:
        raise ValidationFailed(field, "a password of one repeated character is too easy to guess")
    if email:
        lowered, address = password.strip().lower(), email.strip().lower()
        if lowered in (address, address.partition("@")[0]):
            raise ValidationFailed(field, "a password must not be your email address")
