"""REDIS_URL and CELERY_BROKER_URL may name Sentinels (`sentinel://h1:p1;sentinel://h2:p2`, with
FOLLOWUP_REDIS_SENTINEL_MASTER): a URL that cannot work stops every process at start, naming the
variable. The failover itself: tests/reliability/test_sentinel.py."""

from __future__ import annotations

import pytest

from app import create_app
from app.platform.config import ConfigError, Settings
from app.platform.redis_clients import limiter_storage
from app.platform.redis_urls import parse_sentinel_url
from tests.conftest import test_settings
from tests.test_secure_start import _start

SENTINELS = "sentinel://10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://10.0.0.3:26381"


def test_a_sentinel_url_names_every_sentinel_and_the_masters_database_and_password():
    parsed = parse_sentinel_url("sentinel://:s%40cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380")
    assert parsed.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380))
    assert (parsed.db, parsed.password) == (2, "s@cret")


@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        ("REDIS_URL", SENTINELS, "FOLLOWUP_REDIS_SENTINEL_MASTER is not set"),
        ("REDIS_URL", "sentinel://10.0.0.1;sentinel://10.0.0.2:26380", "needs a host and a port"),
        (
            "CELERY_BROKER_URL",
            "sentinel://10.0.0.1:26379;redis://10.0.0.2:6379",
            "must start with sentinel://",
        ),
        ("CELERY_BROKER_URL", "sentinel://10.0.0.1:26379/zero", "must be a number"),
    ],
)
def test_an_unusable_sentinel_url_stops_the_app_at_start_naming_its_variable(
    migrated_database, monkeypatch, variable, url, says
):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")  # else REDIS_URL is the broker's
    monkeypatch.setenv(variable, url)
    monkeypatch.delenv("FOLLOWUP_REDIS_SENTINEL_MASTER", raising=False)
    if "FOLLOWUP_REDIS_SENTINEL_MASTER" not in says:
        monkeypatch.setenv("FOLLOWUP_REDIS_SENTINEL_MASTER", "followup")
    settings = Settings.from_env()
    with pytest.raises(ConfigError) as refused:
        settings.validate()
    assert str(refused.value).startswith(variable) and says in str(refused.value)


def test_sentinels_with_their_master_are_accepted_for_both_variables(migrated_database, redis_url):
    settings = test_settings(
        migrated_database, SENTINELS, broker_url=SENTINELS, redis_sentinel_master="followup"
    )
    app = create_app(settings)  # builds every client: none connects before it is used
    assert settings.broker_is_redis
    conf = app.extensions["celery"].conf
    assert conf.broker_transport == "app.platform.celery_config:SentinelTransport"
    assert conf.broker_transport_options["master_name"] == "followup"


def test_a_procfile_process_given_sentinels_without_a_master_name_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("REDIS_URL", SENTINELS)
    run = _start("worker", tmp_path, "FOLLOWUP_REDIS_SENTINEL_MASTER")
    assert run.returncode != 0
    assert (
        "ConfigError: REDIS_URL names Sentinels but FOLLOWUP_REDIS_SENTINEL_MASTER" in run.stdout + run.stderr
    )


def test_rate_limits_use_limits_own_sentinel_storage_with_the_masters_and_the_sentinels_passwords_apart():
    settings = Settings(
        redis_url="sentinel://:master-pw@10.0.0.1:26379/3;sentinel://10.0.0.2:26380",
        redis_sentinel_master="followup",
        redis_sentinel_password="sentinel-pw",
    )
    uri, options = limiter_storage(settings.redis_url, settings)
    assert uri == "redis+sentinel://10.0.0.1:26379,10.0.0.2:26380/followup"
    assert (options["db"], options["password"], options["use_replicas"]) == (3, "master-pw", False)
    assert options["sentinel_kwargs"]["password"] == "sentinel-pw"
