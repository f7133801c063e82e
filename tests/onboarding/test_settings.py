"""Onboarding's settings come from the environment, and a platform token too short to be secret is
refused at start."""

from __future__ import annotations

import pytest

from app.platform.config import ConfigError, Settings


def test_onboarding_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FOLLOWUP_PLATFORM_TOKEN", "p" * 40)
    monkeypatch.setenv("FOLLOWUP_PUBLIC_BASE_URL", "https://app.clinic.example")
    monkeypatch.setenv("FOLLOWUP_PASSWORD_SETUP_HOURS", "24")
    settings = Settings.from_env()
    assert settings.platform_token == "p" * 40
    assert settings.public_base_url == "https://app.clinic.example"
    assert settings.password_setup_hours == 24
    monkeypatch.delenv("FOLLOWUP_PLATFORM_TOKEN")
    assert Settings.from_env().platform_token is None  # unset: the platform API refuses everyone


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"platform_token": "too-short"}, "FOLLOWUP_PLATFORM_TOKEN"),
        ({"public_base_url": "app.example.com"}, "FOLLOWUP_PUBLIC_BASE_URL"),
    ],
)
def test_unusable_onboarding_settings_refuse_to_start(overrides, named):
    settings = Settings(env="test", **overrides)
    with pytest.raises(ConfigError, match=named):
        settings.validate()
