"""Settings read from the environment, with embedded defaults for a laptop (never for a secret)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from app.platform.delivery.rules import sender_rates_problem
from app.platform.redis_urls import is_redis, redis_settings_problem

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # app/platform/config.py -> the checkout
VAR_DIR = Path(os.environ.get("FOLLOWUP_VAR_DIR", PROJECT_ROOT / "var"))

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# An SMTP relay on this host (a local MTA that relays onwards itself) may be reached without TLS.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class ConfigError(RuntimeError):
    """The configuration cannot be used (e.g. a missing secret, or a development setting in production)."""


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# The variable each setting is read from when it has a name of its own; every other setting is
# FOLLOWUP_<NAME> (e.g. FOLLOWUP_NIGHTLY_HOUR). `.env.example` lists them all (tests/test_compose.py).
ENV_NAMES = {
    "env": "FOLLOWUP_ENV",
    "secret_key": "SECRET_KEY",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "broker_url": "CELERY_BROKER_URL",
    "phi_encryption_key": "PHI_ENCRYPTION_KEY",
    "cors_origins": "CORS_ORIGINS",
    "flower_basic_auth": "FLOWER_BASIC_AUTH",
    "metrics_token": "METRICS_TOKEN",
    "email_backend": "EMAIL_BACKEND",
    "email_from": "EMAIL_FROM",
    "smtp_host": "SMTP_HOST",
    "smtp_port": "SMTP_PORT",
    "smtp_username": "SMTP_USERNAME",
    "smtp_password": "SMTP_PASSWORD",
    "smtp_starttls": "SMTP_STARTTLS",
    "smtp_ssl": "SMTP_SSL",
    "sms_backend": "SMS_BACKEND",
    "sms_api_url": "SMS_API_URL",
    "sms_account": "SMS_ACCOUNT",
    "sms_token": "SMS_TOKEN",
    "sms_messaging_api_url": "SMS_MESSAGING_API_URL",
    "sms_from": "SMS_FROM",
    "sms_status_callback_url": "SMS_STATUS_CALLBACK_URL",
    "sendgrid_event_public_key": "SENDGRID_EVENT_PUBLIC_KEY",
    "sendgrid_inbound_secret": "SENDGRID_INBOUND_SECRET",
    "email_inbound_domain": "EMAIL_INBOUND_DOMAIN",
    "max_content_length": "MAX_CONTENT_LENGTH",
    "instagram_graph_url": "INSTAGRAM_GRAPH_URL",
    "instagram_verify_token": "INSTAGRAM_VERIFY_TOKEN",
    "instagram_app_secret": "INSTAGRAM_APP_SECRET",
}


def env_name(setting: str) -> str:
    """The environment variable of a Settings field."""
    return ENV_NAMES.get(setting, "FOLLOWUP_" + setting.upper())


def _parse(variable: str, kind: str, raw: str):
    """A variable's text as its setting's type (the field's annotation); a clear error naming it."""
    if kind == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if kind == "list[str]":
        return [item.strip() for item in raw.split(",") if item.strip()]
    if kind in ("int", "float"):
        try:
            return int(raw) if kind == "int" else float(raw)
        except ValueError:
            raise ConfigError(f"{variable} must be a number, not {raw!r}") from None
    return raw


def default_database_url() -> str:
    return f"sqlite:///{VAR_DIR / 'followup.db'}"


def load_phi_key() -> str:
    """The Fernet key(s) for protected fields, from PHI_ENCRYPTION_KEY (`followup run` makes one
    under var/ for a laptop). There is no built-in key: data written under one would be readable
    by anyone holding this source."""
    key = _env("PHI_ENCRYPTION_KEY")
    if not key:
        raise ConfigError(
            "PHI_ENCRYPTION_KEY is not set: give the Fernet key of the protected fields "
            "(`make run` generates one in var/phi.key for development)"
        )
    return key


@dataclass
class Settings:
    """Every setting of the system; `from_env()` fills it, tests override fields."""

    env: str = "development"  # production refuses development-only and unsafe settings
    secret_key: str | None = None  # signs tokens (32+ characters); required, no built-in value
    database_url: str = field(default_factory=default_database_url)  # PostgreSQL in production
    redis_url: str = DEFAULT_REDIS_URL  # rate limits, throttles, and the broker unless CELERY_BROKER_URL
    broker_url: str | None = None  # Celery's broker when not REDIS_URL (amqp:// for RabbitMQ)
    redis_sentinel_master: str | None = None  # the master a sentinel:// URL's Sentinels watch, by name
    redis_sentinel_password: str | None = None  # those Sentinels' own password (the master's is in the URL)
    # `none`: DATABASE_URL is PostgreSQL's; `transaction`: a transaction pooler's (operations/pgbouncer.md)
    database_pooler: str = "none"
    database_dead_client_seconds: float = 30.0  # a vanished client's session ends after this (scaling.md)
    migrations_database_url: str | None = None  # PostgreSQL itself, for `followup db upgrade`
    phi_encryption_key: str | None = None  # Fernet key(s) of the protected fields, comma-separated; required
    cors_origins: list[str] = field(default_factory=list)  # comma-separated browser origins
    flower_basic_auth: str | None = None  # user:password for Flower (it refuses to start without)
    metrics_token: str | None = None  # bearer token of /metrics (unset: no /metrics)
    metrics_port: int = 0  # a worker's or beat's own /metrics port (0: none; platform/telemetry/exporter.py)

    access_token_minutes: int = 30  # an access token's lifetime
    refresh_token_days: int = 14  # a refresh token's lifetime
    stream_url: str = "http://localhost:5001/api/me/events"  # the live stream, for browsers (docs/guides/)
    stream_token_seconds: int = 60  # a stream token's life (a browser's EventSource opens with ?token=)
    stream_heartbeat_seconds: float = 15.0  # a comment this often keeps proxies from closing an idle stream
    stream_max_seconds: float = 1800.0  # a stream's longest life, then the client resumes (Last-Event-ID)
    stream_retention_hours: float = 24.0  # how far back Last-Event-ID replays (older: a `reset` event)
    login_max_failures: int = 5  # attempts per email and client address in login_lockout_seconds
    login_max_failures_per_address: int = 50  # attempts from one client address, all emails together
    login_max_failures_per_account: int = 100  # attempts at one email, all addresses (high: locks it for all)
    login_lockout_seconds: int = 300  # the window of those attempts, and the lockout after them
    # Password-setup links are this + /console/set-password#token=... (a fragment is never sent to a server).
    public_base_url: str = "http://localhost:5000"
    password_setup_hours: int = 72  # how long a password-setup link works
    # The platform operator's bearer token for /api/platform/* (32+ characters); unset: they refuse all.
    platform_token: str | None = None

    # Redis clients (app/platform/redis_clients.py): seconds to connect and to wait for an answer;
    # retries of a refused or reset connection (a timeout is not retried).
    redis_connect_timeout: float = 2.0
    redis_socket_timeout: float = 5.0
    redis_retries: int = 1

    # Celery's workers.
    visibility_timeout: int = 3600  # Redis delivers an unacknowledged message again after this
    task_time_limit: int = 300  # a task still running after this is killed with its process
    task_soft_time_limit: int = 240  # ... and told to stop (SoftTimeLimitExceeded) after this
    heartbeat_interval: float = 30.0  # how often each worker process records its heartbeat
    statistics_interval: float = 10.0  # how often beat looks for stale planner statistics (ANALYZE)
    # ... for the tables whose rows changed by more than 50 + this fraction of them since their last
    # ANALYZE (1.0: the table doubled; autovacuum's own rule, where it is on, is 0.1).
    statistics_growth: float = 1.0
    # How the sweeps' ANALYZE and VACUUM share the cores (app/domains/ops/service.py): the statistics target
    # they sample by (the server's default is 100), and their cost-based sleep (autovacuum's default).
    statistics_target: int = 30
    upkeep_cost_delay_ms: float = 2.0
    # How often beat looks for tables holding many dead row versions (ops.vacuum_dead_rows), and
    # how many: more than this floor + this fraction of the table's live rows.
    vacuum_interval: float = 10.0
    vacuum_dead_floor: int = 1000
    vacuum_dead_fraction: float = 0.05

    # The job ledger (app/platform/scheduling).
    schedule_horizon_seconds: float = 600.0  # rows due within this are published with an ETA, later ones wait
    promote_interval: float = 5.0  # how often beat publishes the rows that came within the horizon
    redispatch_grace_seconds: float = 60.0  # a published row not done this long after due is sent again
    redispatch_interval: float = 15.0  # how often beat looks for those
    overdue_interval: float = 60.0  # how often beat marks open tasks past due OVERDUE
    stale_lead_interval: float = 3600.0  # how often beat looks for stale leads
    benefits_reset_interval: float = 3600.0  # how often beat looks for clinics on their benefits reset date
    calendar_feed_interval: float = 900.0  # how often providers' calendar feeds are read (availability)
    # How often beat looks for clinics whose follow-up pass window is open (sequences/follow_up_pass.py).
    follow_up_pass_interval: float = 300.0
    # Unprocessed events no processing job names get one (app/platform/events/recovery.py); how often.
    event_sweep_interval: float = 60.0
    event_sweep_grace_seconds: float = 300.0
    # Rows a sweep that emits events (overdue tasks, stale leads) changes to a transaction: each
    # is one processing job of as many events, and holds its row locks that long.
    sweep_chunk_rows: int = 500
    # Every open lead has a next step (app/domains/automation/orphans.py): leads checked per run, how often.
    # Small slices often rather than big ones seldom (the same pace through the leads): a slice
    # full of orphans is one statement that holds a database core, and a new lead's processing
    # waits for that core.
    orphan_interval: float = 6.0
    orphan_slice_size: int = 2000
    orphan_tasks_per_run: int = 25  # follow-ups an orphan sweep run plans (bench/orphans)
    overdue_digest_interval: float = 300.0  # how often beat looks for overdue digests (one a user an hour)
    # The daily erasure of closed leads past their clinic's retention (erase_closed_after_months,
    # app/domains/privacy/retention.py): its hour (UTC) and the leads erased per transaction.
    retention_hour: int = 4
    retention_batch: int = 200
    # Daily work runs on the clock (celery crontab, in UTC: Celery's timezone, app/platform/celery_config.py),
    # at the top of these hours, so a restart or a deploy never postpones it by a day: the ledger's
    # purge of finished rows, and intelligence's nightly recount, training and re-scoring.
    purge_hour: int = 2
    nightly_hour: int = 3
    purge_done_after_days: int = 7  # done and cancelled ledger rows are purged this long after
    job_max_attempts: int = 5  # a ledger job's attempts before it is `dead`
    job_retry_base_seconds: float = 5.0  # the first retry's wait, doubled at each attempt
    sweep_batch_size: int = 5000  # rows claimed per sweep transaction (then published in one pipelined batch)
    job_early_tolerance_seconds: float = 1.0  # a delivery this early (clock skew between hosts) still runs
    # Bulk work steps aside (sent again this much later) while a new lead's processing has waited
    # longer than `realtime_behind_seconds`, for at most `yield_at_most_seconds` past its due time.
    realtime_behind_seconds: float = 0.05
    yield_again_seconds: float = 2.0
    yield_at_most_seconds: float = 30.0
    # A clinic's share of a worker process' threads on a queue of turns (scheduling/turns.py): under
    # the Procfile's SENDER_CONCURRENCY (4), so a clinic's backlog of slow sends leaves others a thread.
    threads_per_clinic: int = 3

    # Notifications (app/domains/outbound). Email and SMS go out through a backend chosen here; `console`
    # (the embedded default) appends each message to var/outbox/ and counts it sent.
    email_backend: str = "console"  # smtp, or console (appends to var/outbox/email.log)
    email_from: str = "followup@localhost"  # when the clinic sets no email_from
    smtp_host: str = "127.0.0.1"  # the SMTP relay
    smtp_port: int = 25  # its port (587 for STARTTLS, 465 for SMTP_SSL, usually)
    smtp_username: str | None = None  # set: the connection logs in (AUTH) with it
    smtp_password: str | None = None  # the password of SMTP_USERNAME
    # Production refuses a relay reached without TLS (SMTP_STARTTLS or SMTP_SSL) unless it is on this
    # host: credentials and patients' messages would cross the network in clear.
    smtp_starttls: bool = False  # STARTTLS on a plain port
    smtp_ssl: bool = False  # implicit TLS (port 465)

    sms_backend: str = "console"  # http (a Twilio-style API), or console (var/outbox/sms.log)
    sms_api_url: str = "https://api.twilio.com/2010-04-01"  # the SMS provider's API (Twilio-style)
    sms_messaging_api_url: str = "https://messaging.twilio.com/v1"  # Twilio's Messaging Services API
    sms_account: str | None = None  # the provider account
    sms_token: str | None = None  # its API token
    sms_from: str | None = None  # the sending number
    whatsapp_from: str | None = None  # the WhatsApp sender (E.164) of clinics without their own
    # A reply to the shared SMS_FROM or WhatsApp sender is the clinic's that texted that phone from it
    # within this many days (the newest); else it waits in the platform operator's queue.
    shared_sender_reply_days: int = 30
    sms_status_callback_url: str | None = None  # https://<host>/api/providers/twilio/status, sent to Twilio
    email_sender_rate: str | None = None  # the SMTP relay's pace, e.g. "10/second" (unset: none)
    sms_sender_rate: str | None = None  # each From number's or Messaging Service's pace, e.g. "1/second"
    sendgrid_event_public_key: str | None = None  # SendGrid's Event Webhook verification key (base64)
    sendgrid_inbound_secret: str | None = None  # the path secret of the Inbound Parse webhook URL
    email_inbound_domain: str | None = None  # Inbound Parse's domain: reply+<token>@, unsubscribe+<token>@
    notification_send_timeout: float = 20.0  # socket timeout of one SMTP/HTTP exchange
    instagram_graph_url: str = "https://graph.instagram.com"  # Meta's Graph API (make run: a local stand-in)
    instagram_verify_token: str | None = None  # what Meta's webhook subscription handshake must present
    instagram_app_secret: str | None = None  # the Meta app's secret: the X-Hub-Signature-256 of its webhooks
    notification_max_attempts: int = 6  # a message's attempts before it is `dead`
    notification_retry_base_seconds: float = 30.0  # the first retry's wait, doubled at each attempt
    notification_retry_max_seconds: float = 3600.0  # the longest wait between two attempts
    # A row still `sending` this long after its send began belongs to a worker that died mid-send.
    # Far above any real send (several socket timeouts) so a slow send is never taken for dead.
    notification_stuck_seconds: float = 900.0
    notification_stuck_interval: float = 60.0  # how often beat looks for those
    sms_reconcile_interval: float = 300.0  # how often unknown-outcome SMS are looked up at Twilio
    # Messages of a batch claimed together, and their outcomes recorded together: one statement each
    # per window. A worker killed mid-window leaves the whole window `sending` (emails there end
    # "outcome unknown"), so this bounds what a crash costs against the commits saved.
    notification_claim_window: int = 50
    digest_hour: int = 8  # local time of the daily digest
    digest_window_hours: int = 4  # a digest not sent by 08:00 + this (beat down) is skipped that day
    digest_interval: float = 300.0  # how often beat looks for users whose digest is due
    summary_interval: float = 300.0  # how often beat looks for admins' due analytics summaries
    # How often beat folds the task and message months' rows of changes (analytics.fold_months):
    # the follow-up reports sum a month's rows, one after a fold.
    months_fold_interval: float = 60.0
    # The largest request body accepted (MAX_CONTENT_LENGTH, bytes): a bigger one is a 413 before it is read,
    # before authentication or a signature check (an anonymous sender cannot make a web process buffer it).
    max_content_length: int = 1024 * 1024
    rate_limit_per_minute: int = 100  # requests per minute per user or API key (0: no limit)
    # Bookings and moves made on one clinic's booking page an hour, whatever the address (0: no
    # limit): beside the per-address limit on posts, a script on many addresses cannot fill a calendar.
    booking_page_bookings_per_hour: int = 60
    # Leads (rows of an import, each a whole capture) per ledger job of a bulk action: a chunk is one
    # turn on the one-process bulk queue, and another clinic's bulk work waits for it (bench/fairness).
    bulk_chunk_size: int = 100
    import_chunk_size: int = 50
    # Webhook deliveries: one deadline for the whole exchange (DNS, connect, TLS, request, the
    # receiver's status and headers), after which it is cut and counts as a failed attempt.
    webhook_deadline_seconds: float = 10.0
    # Per clinic: its subscriptions, and its deliveries being sent at once (more wait their turn,
    # looked at again every `webhook_busy_retry_seconds`): one clinic's slow receiver holds at most
    # that many of the webhook workers, fewer than the Procfile's `webhooks` process runs.
    webhook_max_subscriptions_per_clinic: int = 10
    webhook_max_concurrent_per_clinic: int = 1
    webhook_busy_retry_seconds: float = 2.0
    # Every URL a user gives the engine to reach (webhooks, calendar feeds, outbound media) on a private
    # or loopback address is refused (SSRF) unless this is set (FOLLOWUP_WEBHOOK_ALLOW_PRIVATE_ADDRESSES=1):
    # tests and a local setup reach localhost. Link-local and metadata addresses are refused even then.
    webhook_allow_private_addresses: bool = False
    # Reverse proxies in front of the web process that append to X-Forwarded-For/-Proto (0: none). With N,
    # the client is the address the Nth proxy from us saw (werkzeug's ProxyFix): what rate limits, login
    # throttling and audit see. Set exactly the number of proxies you run: more lets a client choose its own.
    trusted_proxy_hops: int = 0
    # Five attempts, the backoff spreading them over several minutes: enough to ride out a receiver's
    # restart or deploy. A receiver down for longer is better told by `failed` (its admin sees it in
    # the history) than by more attempts, each of which may hold a webhook worker a whole deadline.
    webhook_max_attempts: int = 5
    webhook_retry_base_seconds: float = 30.0  # the first retry's wait, doubled at each attempt (jittered)
    webhook_retry_max_seconds: float = 3600.0  # the longest wait between two attempts
    # A delivery still `sending` this long after its POST began belongs to a worker that died mid-send.
    webhook_stuck_seconds: float = 300.0
    webhook_stuck_interval: float = 60.0  # how often beat looks for those
    # Idempotency keys: an unfinished reservation older than the lease is a crashed request's and may
    # be taken over (longer than any request runs); expired keys are purged in batches by beat.
    idempotency_lease_seconds: float = 60.0
    idempotency_purge_interval: float = 3600.0
    idempotency_purge_batch: int = 5000
    # A lead's background work after its events (re-scoring, the monthly counts) is due this long
    # after them: the leads of those seconds are drained together, one wake-up and one pass for
    # them all, and a new lead's realtime job does none of it.
    background_delay_seconds: float = 2.0

    # Modules whose JOB_KINDS and EVENT_HANDLERS app/bootstrap.py adds to the process's engine
    # (FOLLOWUP_PLUGINS, comma-separated): e.g. test or benchmark job handlers a worker must know too.
    plugins: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls) -> Settings:
        """Each setting from its variable (`env_name`), parsed as its default's type; unset or empty:
        the default. A numeric setting with a name of its own also answers to FOLLOWUP_<NAME>."""
        settings = cls()
        for f in fields(cls):
            raw = _env(env_name(f.name))
            if raw is None and f.type in ("int", "float") and f.name in ENV_NAMES:
                raw = _env("FOLLOWUP_" + f.name.upper())
            if raw is not None:
                setattr(settings, f.name, _parse(env_name(f.name), f.type, raw))
        # A Redis broker (or its Sentinels) also keeps rate limits and throttles; RabbitMQ needs REDIS_URL.
        if _env("REDIS_URL") is None and (broker := _env("CELERY_BROKER_URL")) and is_redis(broker):
            settings.redis_url = broker
        return settings

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def broker_is_redis(self) -> bool:
        """Whether the broker is Redis (else RabbitMQ or another kombu transport: no direct Redis writes)."""
        return is_redis(self.celery_broker_url)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def validate(self) -> None:
        """Refuse settings that cannot work, and production on an embedded default secret."""
        if self.schedule_horizon_seconds + self.redispatch_grace_seconds >= self.visibility_timeout:
            # Redis would hand a held ETA message to another worker before it is even due.
            raise ConfigError(
                "schedule_horizon_seconds + redispatch_grace_seconds must stay below visibility_timeout"
            )
        if problem := redis_settings_problem(self.redis_url, self.broker_url, self.redis_sentinel_master):
            raise ConfigError(problem)
        if self.database_pooler not in ("none", "transaction"):
            raise ConfigError("FOLLOWUP_DATABASE_POOLER must be none or transaction")
        if self.email_backend not in ("smtp", "console"):
            raise ConfigError("EMAIL_BACKEND must be smtp or console")
        if self.sms_backend not in ("http", "console"):
            raise ConfigError("SMS_BACKEND must be http or console")
        if self.notification_stuck_seconds <= 3 * self.notification_send_timeout:
            # A live but slow send (connect, MAIL/RCPT, DATA) must never look like a dead worker's.
            raise ConfigError("notification_stuck_seconds must exceed 3 x notification_send_timeout")
        if self.webhook_stuck_seconds <= 2 * self.webhook_deadline_seconds:
            # A live delivery (its POST, then its outcome written) must never look like a dead worker's.
            raise ConfigError("webhook_stuck_seconds must exceed 2 x webhook_deadline_seconds")
        if min(self.threads_per_clinic, self.webhook_max_concurrent_per_clinic) < 1:
            raise ConfigError("threads_per_clinic and webhook_max_concurrent_per_clinic must be at least 1")
        if self.notification_claim_window < 1:
            raise ConfigError("notification_claim_window must be at least 1")
        if problem := sender_rates_problem(self.email_sender_rate, self.sms_sender_rate):
            raise ConfigError(problem)
        if self.platform_token is not None and len(self.platform_token) < 32:
            raise ConfigError("FOLLOWUP_PLATFORM_TOKEN must be at least 32 characters (or unset)")
        if not self.public_base_url.startswith(("http://", "https://")):
            raise ConfigError("FOLLOWUP_PUBLIC_BASE_URL must be an http(s) URL")
        for name in ("purge_hour", "nightly_hour", "retention_hour"):
            if not 0 <= getattr(self, name) <= 23:
                raise ConfigError(f"{env_name(name)} must be an hour from 0 to 23")
        self._validate_secrets()
        if not self.is_production:
            return
        if len(self.secret_key) < 32:
            raise ConfigError("SECRET_KEY must be a strong secret (32 characters or more) in production")
        clear_smtp = self.email_backend == "smtp" and not (self.smtp_starttls or self.smtp_ssl)
        if clear_smtp and self.smtp_host not in LOCAL_HOSTS:
            raise ConfigError(
                f"SMTP_STARTTLS or SMTP_SSL must be on when FOLLOWUP_ENV=production: the relay "
                f"{self.smtp_host} would get the login and the messages in clear"
            )
        # A console backend writes messages (names, phone numbers, texts: PHI) to a file and sends
        # nothing; private webhook addresses let a clinic admin reach the internal network (SSRF).
        for name, backend, real in (("EMAIL", self.email_backend, "smtp"), ("SMS", self.sms_backend, "http")):
            if backend == "console":
                raise ConfigError(
                    f"{name}_BACKEND=console is for development; set {real} when FOLLOWUP_ENV=production"
                )
        if self.webhook_allow_private_addresses:
            raise ConfigError(
                "FOLLOWUP_WEBHOOK_ALLOW_PRIVATE_ADDRESSES is refused when FOLLOWUP_ENV=production"
            )

    def _validate_secrets(self) -> None:
        """Every process refuses to start without its secrets: none has a built-in value."""
        if not self.secret_key:
            raise ConfigError(
                "SECRET_KEY is not set: it signs every token (`make run` generates one in var/secret_key)"
            )
        if not self.phi_encryption_key:
            load_phi_key()  # raises, naming PHI_ENCRYPTION_KEY

    def resolved_phi_key(self) -> str:
        return self.phi_encryption_key or load_phi_key()
