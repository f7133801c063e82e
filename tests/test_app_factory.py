import pytest

from app import create_app
from app.platform.config import ConfigError, Settings


def test_create_app_reads_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/3")
    monkeypatch.setenv("FOLLOWUP_SCHEDULE_HORIZON_SECONDS", "42")
    app = create_app()
    settings = app.config["SETTINGS"]
    assert settings.database_url.endswith("x.db")
    assert settings.redis_url == "redis://127.0.0.1:1/3"
    assert settings.schedule_horizon_seconds == 42.0


def test_overrides_win_and_unknown_settings_are_refused(tmp_path):
    app = create_app({"database_url": f"sqlite:///{tmp_path / 'y.db'}", "secret_key": "s" * 32})
    assert app.config["SETTINGS"].secret_key == "s" * 32
    with pytest.raises(KeyError):
        create_app({"no_such_setting": 1})


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("variable", ["SECRET_KEY", "PHI_ENCRYPTION_KEY"])
def test_a_start_without_a_secret_refuses_naming_it(monkeypatch, tmp_path, env, variable):
    """No secret has a built-in value, in development either: only `make run` makes some (var/)."""
    monkeypatch.setenv("FOLLOWUP_ENV", env)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.delenv(variable)
    with pytest.raises(ConfigError, match=variable):
        create_app()


def test_production_refuses_a_weak_secret():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(Settings(**(PRODUCTION | {"secret_key": "short"})))


PRODUCTION = {
    "env": "production",
    "secret_key": "a-real-secret-from-the-vault-123",
    "phi_encryption_key": "3q2TS0b8sxcP8gQ4w2Bv6O0Tw2WcVFQZq5gKq4Jx1lQ=",
    "database_url": "sqlite://",
    "email_backend": "smtp",
    "sms_backend": "http",
}


def test_production_starts_with_real_secrets():
    settings = Settings(**PRODUCTION)
    assert create_app(settings).config["SETTINGS"].is_production


def test_production_refuses_missing_phi_key(monkeypatch):
    monkeypatch.delenv("PHI_ENCRYPTION_KEY")
    settings = Settings(**(PRODUCTION | {"phi_encryption_key": None}))
    with pytest.raises(ConfigError, match="PHI_ENCRYPTION_KEY"):
        create_app(settings)


@pytest.mark.parametrize("host", ["smtp.example.com", "10.0.0.5"])
def test_production_refuses_an_smtp_relay_reached_without_tls(host):
    with pytest.raises(ConfigError, match="SMTP_STARTTLS or SMTP_SSL"):
        create_app(Settings(**(PRODUCTION | {"smtp_host": host})))
    for tls in ({"smtp_starttls": True}, {"smtp_ssl": True, "smtp_port": 465}):
        assert (
            create_app(Settings(**(PRODUCTION | {"smtp_host": host} | tls))).config["SETTINGS"].is_production
        )


def test_production_may_hand_mail_to_a_relay_on_this_host_without_tls():
    assert create_app(Settings(**(PRODUCTION | {"smtp_host": "localhost"}))).config["SETTINGS"].is_production


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("email_backend", "console", "EMAIL_BACKEND"),
        ("sms_backend", "console", "SMS_BACKEND"),
        ("webhook_allow_private_addresses", True, "FOLLOWUP_WEBHOOK_ALLOW_PRIVATE_ADDRESSES"),
    ],
)
def test_production_refuses_development_only_settings(setting, value, named):
    with pytest.raises(ConfigError, match=named):
        create_app(Settings(**(PRODUCTION | {setting: value})))


def test_sql_errors_are_logged_without_their_bound_values(app, caplog):
    """A failed statement's message (what logs and tracebacks show) has the SQL, not the PHI in it."""
    import sqlalchemy as sa

    db = app.extensions["followup.db"]
    with pytest.raises(sa.exc.DBAPIError) as failure, db.engine.connect() as conn:
        # A missing table fails on every dialect (SQLite's division by zero is NULL, not an error).
        phi = {"name": "Jane Doe 555-0100"}
        conn.execute(sa.text("SELECT id FROM no_such_table WHERE name = :name"), phi)
    assert "Jane Doe" not in str(failure.value)
    assert "hidden due to hide_parameters=True" in str(failure.value)


def test_behind_trusted_proxies_the_client_address_is_the_forwarded_one(migrated_database, redis_url):
    from flask import request

    from tests.conftest import test_settings

    seen = []
    for hops in (0, 1):
        app = create_app(test_settings(migrated_database, redis_url, trusted_proxy_hops=hops))
        app.before_request(lambda: seen.append(request.remote_addr))
        resp = app.test_client().get(
            "/healthz", headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
        )
        assert resp.status_code == 200
    assert seen == ["10.0.0.2", "203.0.113.9"]


def test_every_setting_is_read_from_its_variable_as_its_type(monkeypatch):
    monkeypatch.setenv("SMTP_PORT", "587")
    monkeypatch.setenv("SMTP_STARTTLS", "yes")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("FOLLOWUP_JOB_EARLY_TOLERANCE_SECONDS", "2.5")
    monkeypatch.setenv("FOLLOWUP_ENV", "")  # empty, as an .env line left blank: the default
    settings = Settings.from_env()
    assert (settings.smtp_port, settings.smtp_starttls) == (587, True)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.job_early_tolerance_seconds == 2.5
    assert settings.env == "development"
    monkeypatch.delenv("SMTP_PORT")
    monkeypatch.setenv("FOLLOWUP_SMTP_PORT", "465")  # the numeric settings' older name
    assert Settings.from_env().smtp_port == 465


def test_a_setting_that_is_not_a_number_is_refused_naming_its_variable(monkeypatch):
    monkeypatch.setenv("FOLLOWUP_NIGHTLY_HOUR", "three")
    with pytest.raises(ConfigError, match="FOLLOWUP_NIGHTLY_HOUR must be a number"):
        Settings.from_env()
