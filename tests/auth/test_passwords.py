"""The stand-in hash a user without a password is checked against costs what a real check costs."""

from __future__ import annotations

import time

from app.domains.auth import passwords


def test_the_stand_in_hash_has_the_hashers_own_parameters():
    # A stand-in made with weaker parameters would answer faster and tell which users have no password.
    assert not passwords._hasher.check_needs_rehash(passwords._DUMMY_HASH)


def test_a_user_without_a_password_matches_nothing_after_a_real_check():
    real = passwords.hash_password("a real password 123")
    started = time.process_time()
    assert passwords.verify_password(real, "a real password 123")
    real_check = time.process_time() - started
    started = time.process_time()
    assert not passwords.verify_password(None, "a real password 123")
    stand_in_check = time.process_time() - started
    assert stand_in_check > real_check / 3  # an argon2 verification, not a shortcut
