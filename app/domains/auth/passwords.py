"""Passwords: argon2 hashes, the one policy every way of setting a password goes through, and the
throttle on guessing them (login, a password change)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.platform.errors import TooManyRequests, ValidationFailed

MIN_LENGTH = 10
MAX_LENGTH = 1024

_hasher = PasswordHasher()
# What a user without a password is checked against, so the answer takes as long as a real check: a
# hash made once with `_hasher`'s parameters and written here (hashing it at import cost every
# process 0.4 s of CPU at start); tests/auth/test_passwords.py fails if the parameters move apart.
_DUMMY_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$B8Lg7RNOIzrdFD18vc9pRQ$sSp+0lDYcGNPd5CD3Mcz0LrMTBYl9DWh2O1FvRiMVTg"
)


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


# --- login throttling (Redis: shared by every web process) -------------------------------------


# Three counters of attempts, each counted (INCR) before the password is checked, so parallel guesses
# cannot all pass a read-then-check. A successful login takes its attempt back from each.
# - per account *and* client address (login_max_failures, low): a guesser locks the account only from
#   where they are; everyone else still signs in. The window opens at the first attempt and further
#   attempts do not lengthen it, so a guesser cannot keep an account locked past one window.
# - per client address over all accounts (login_max_failures_per_address): one place trying many.
# - per account over all addresses (login_max_failures_per_account, high): a guess spread over many
#   addresses. Only this one locks the account for everyone, and only after that many failures
#   within one window (at login_max_failures per address, that is many addresses).
# The client address is `request.remote_addr`: behind a load balancer, werkzeug's ProxyFix
# (FOLLOWUP_TRUSTED_PROXY_HOPS) makes it the client's from X-Forwarded-For; without it every client
# looks like the proxy, and app/platform/ratelimit.py warns once when forwarded requests arrive untrusted.


def throttle_keys(email: str, address: str) -> tuple[str, str, str]:
    email_digest = hashlib.sha256(email.lower().encode()).hexdigest()
    address_digest = hashlib.sha256(address.encode()).hexdigest()
    return (
        f"followup:login-attempts:{email_digest}:{address_digest}",
        f"followup:login-attempts:addr:{address_digest}",
        f"followup:login-attempts:acct:{email_digest}",
    )


# Every write of a counter keeps or sets its window, so no counter outlives it: an INCR gives a key
# without one (new, or left by an older release) the window, and a release (`forget_attempt`) takes
# back only a count that is still there, never recreating an expired key (a DECR of a missing key
# makes one at -1 with no expiry, which no later attempt's window would ever end). Scripts, not
# EXPIRE NX: the embedded default's Redis is 6.2, and that flag needs Redis 7.
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
  counts[i] = redis.call('INCR', key)
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, ARGV[1]) end
end
return counts
"""
# KEYS[1] (the account at this address) is dropped; the others lose one attempt while they hold one
# (DECR keeps the key's TTL).
_FORGET = """
redis.call('DEL', KEYS[1])
for i = 2, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""


def count_attempt(redis, keys: tuple[str, str, str], settings) -> None:
    """Count this attempt; TooManyRequests if it is one over a limit (the password is not checked)."""
    # One script: the counters move together, and a window opens at the first attempt (later
    # attempts do not lengthen it).
    counts = redis.register_script(_COUNT)(keys=list(keys), args=[settings.login_lockout_seconds])
    limits = (
        settings.login_max_failures,
        settings.login_max_failures_per_address,
        settings.login_max_failures_per_account,
    )
    over = [key for key, count, limit in zip(keys, counts, limits, strict=True) if count > limit]
    if over:
        raise TooManyRequests("too many failed logins; try again later", headers=_retry_after(redis, over[0]))


def _retry_after(redis, key: str) -> dict:
    # Rounded up (TTL rounds to the nearest second): a client that waits this long is let in.
    return {"Retry-After": str(max(math.ceil(redis.pttl(key) / 1000), 1))}


def forget_attempt(redis, keys: tuple[str, str, str]) -> None:
    """Take back an attempt that was not a guess (the password was right)."""
    redis.register_script(_FORGET)(keys=list(keys))


@contextmanager
def counted(redis, keys: tuple[str, str, str], settings) -> Iterator[None]:
    """Count an attempt (TooManyRequests over a limit), and take it back unless the block raises:
    a check that refuses (a wrong code) stays counted."""
    count_attempt(redis, keys, settings)
    yield
    forget_attempt(redis, keys)


# --- second-factor codes (Redis) ------------------------------------------------------------------

# Wrong codes are counted per user, from every address, apart from the password's counters: a right
# password takes its own attempt back, and must not take back wrong codes too, or a guesser who holds
# the password could reset the count between guesses. Only a right code, or the end of the window
# (login_lockout_seconds from the first wrong code), clears it.


def code_throttle_key(user_id: int) -> str:
    return f"followup:second-factor-attempts:{user_id}"


@contextmanager
def code_counted(redis, user_id: int, settings) -> Iterator[None]:
    """Count a code offered for the user; TooManyRequests (the code is not checked) once more than
    login_max_failures were wrong in the window. A right code (the block does not raise) clears it."""
    key = code_throttle_key(user_id)
    (count,) = redis.register_script(_COUNT)(keys=[key], args=[settings.login_lockout_seconds])
    if count > settings.login_max_failures:
        raise TooManyRequests("too many wrong codes; try again later", headers=_retry_after(redis, key))
    yield
    redis.delete(key)
