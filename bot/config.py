"""Settings from the environment (and a `.env` file), in one place.

Every setting is documented in the README's Configuration table. Nothing is
read at import time: `Settings.from_env()` is called by the app factory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INSTANCE = PROJECT_ROOT / "instance"


REDIS_URL_FILE = "redis.url"
"""Where `make run` writes the embedded Redis' URL (under INSTANCE_PATH) for other commands."""


def published_redis_url(instance_path: str, bot_env: str | None) -> str:
    """The URL of the Redis `make run` started for this instance, if it is running."""
    if (bot_env or "development").lower() == "production":
        return ""  # production names its Redis explicitly (REDIS_URL)
    try:
        return (Path(instance_path) / REDIS_URL_FILE).read_text().strip()
    except OSError:
        return ""


class ConfigError(RuntimeError):
    """The configuration cannot run safely (e.g. production without an auth token)."""


def _bool(value: str | None, default: bool = False) -> bool:
    """Read an environment flag ("1", "true", "yes", "on")."""
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEV_CLOCK_FILE = "clock"
"""Development's shared clock under instance/ (absent: the real time; see bot/clock.py)."""


def _dev_clock_file(bot_env: str | None, instance: str) -> str:
    """Development shares one clock file between web, worker, clock and CLI processes."""
    if (bot_env or "development").lower() != "development":
        return ""
    return str(Path(instance) / DEV_CLOCK_FILE)


@dataclass(frozen=True)
class Settings:
    """Everything the bot can be configured with."""

    env: str = "development"  # BOT_ENV: development | production | test
    instance_path: str = str(DEFAULT_INSTANCE)
    database_url: str = ""
    redis_url: str = ""  # empty: start an embedded Redis under instance/
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from_number: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_api_base_url: str = ""
    public_base_url: str = ""
    sms_backend: str = ""  # twilio | console; default twilio when credentials are set
    clinic_name: str = "your clinic"
    clinic_contact: str = "your care team"
    program_name: str = "Integration Companion"
    default_region: str = "US"
    default_timezone: str = "America/New_York"
    journal_encryption_key: str = ""
    phone_hash_key: str = ""
    clock_file: str = ""  # tests and demos only: read "now" from this file
    secret_key: str = ""  # signs journal links and form sessions; dev: instance/secret.key
    care_team_numbers: tuple[str, ...] = field(default_factory=tuple)
    sms_max_per_second: float = 1.0
    log_level: str = "INFO"
    queue_name: str = "integration-bot"
    care_color: str = "#2f6f73"  # CARE_COLOR: the console's accent colour
    care_silent_after: int = 3  # CARE_SILENT_AFTER: unanswered nudges before "stopped replying"
    journal_share_default: bool = False  # JOURNAL_SHARE_DEFAULT: care team sees journals
    proxy_hops: int = 0  # PROXY_HOPS: trusted reverse proxies in front of the web process
    allow_unsigned_webhooks: bool = False  # development only: accept unsigned webhooks
    safety_check_timeout_minutes: int = 30  # no answer to the safety question: page
    spool_path: str = ""  # append-only inbound spool when the database and Redis are down

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from environ (default os.environ plus a .env file)."""
        if environ is None:
            from dotenv import dotenv_values

            environ = {**dotenv_values(PROJECT_ROOT / ".env"), **os.environ}
        env = environ.get
        instance = env("INSTANCE_PATH") or str(DEFAULT_INSTANCE)
        return cls(
            env=(env("BOT_ENV") or "development").lower(),
            instance_path=instance,
            database_url=env("DATABASE_URL") or f"sqlite:///{Path(instance) / 'bot.sqlite3'}",
            redis_url=env("REDIS_URL") or published_redis_url(instance, env("BOT_ENV")),
            twilio_account_sid=env("TWILIO_ACCOUNT_SID") or "",
            twilio_auth_token=env("TWILIO_AUTH_TOKEN") or "",
            twilio_from_number=env("TWILIO_FROM_NUMBER") or "",
            twilio_messaging_service_sid=env("TWILIO_MESSAGING_SERVICE_SID") or "",
            twilio_api_base_url=env("TWILIO_API_BASE_URL") or "",
            public_base_url=(env("PUBLIC_BASE_URL") or "").rstrip("/"),
            sms_backend=(env("SMS_BACKEND") or "").lower(),
            clinic_name=env("CLINIC_NAME") or cls.clinic_name,
            clinic_contact=env("CLINIC_CONTACT") or cls.clinic_contact,
            program_name=env("PROGRAM_NAME") or cls.program_name,
            default_region=env("DEFAULT_REGION") or cls.default_region,
            default_timezone=env("DEFAULT_TIMEZONE") or cls.default_timezone,
            journal_encryption_key=env("JOURNAL_ENCRYPTION_KEY") or "",
            phone_hash_key=env("PHONE_HASH_KEY") or "",
            clock_file=env("CLOCK_FILE") or _dev_clock_file(env("BOT_ENV"), instance),
            secret_key=env("SECRET_KEY") or "",
            care_team_numbers=tuple(
                n.strip() for n in (env("CARE_TEAM_NUMBERS") or "").split(",") if n.strip()
            ),
            sms_max_per_second=float(env("SMS_MAX_PER_SECOND") or 1.0),
            log_level=env("LOG_LEVEL") or "INFO",
            queue_name=env("RQ_QUEUE") or cls.queue_name,
            care_color=env("CARE_COLOR") or cls.care_color,
            care_silent_after=int(env("CARE_SILENT_AFTER") or cls.care_silent_after),
            journal_share_default=_bool(env("JOURNAL_SHARE_DEFAULT")),
            proxy_hops=int(env("PROXY_HOPS") or 0),
            allow_unsigned_webhooks=_bool(env("ALLOW_UNSIGNED_WEBHOOKS")),
            safety_check_timeout_minutes=int(env("SAFETY_CHECK_TIMEOUT_MINUTES")
                                             or cls.safety_check_timeout_minutes),
            spool_path=env("SPOOL_PATH") or "",
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes from_env() rebuild these settings (for worker processes)."""
        return {
            "BOT_ENV": self.env, "INSTANCE_PATH": self.instance_path,
            "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "TWILIO_FROM_NUMBER": self.twilio_from_number,
            "TWILIO_MESSAGING_SERVICE_SID": self.twilio_messaging_service_sid,
            "TWILIO_API_BASE_URL": self.twilio_api_base_url,
            "PUBLIC_BASE_URL": self.public_base_url, "SMS_BACKEND": self.sms_backend,
            "CLINIC_NAME": self.clinic_name, "CLINIC_CONTACT": self.clinic_contact,
            "PROGRAM_NAME": self.program_name, "DEFAULT_REGION": self.default_region,
            "DEFAULT_TIMEZONE": self.default_timezone,
            "JOURNAL_ENCRYPTION_KEY": self.journal_encryption_key,
            "PHONE_HASH_KEY": self.phone_hash_key, "CLOCK_FILE": self.clock_file,
            "SECRET_KEY": self.secret_key,
            "CARE_TEAM_NUMBERS": ",".join(self.care_team_numbers),
            "SMS_MAX_PER_SECOND": repr(self.sms_max_per_second),
            "LOG_LEVEL": self.log_level, "RQ_QUEUE": self.queue_name,
            "CARE_COLOR": self.care_color,
            "CARE_SILENT_AFTER": str(self.care_silent_after),
            "JOURNAL_SHARE_DEFAULT": "1" if self.journal_share_default else "0",
            "PROXY_HOPS": str(self.proxy_hops),
            "ALLOW_UNSIGNED_WEBHOOKS": "1" if self.allow_unsigned_webhooks else "",
            "SAFETY_CHECK_TIMEOUT_MINUTES": str(self.safety_check_timeout_minutes),
            "SPOOL_PATH": self.spool_path,
        }

    def with_overrides(self, overrides: dict | None) -> Settings:
        """A copy with the given fields replaced (unknown names are an error)."""
        if not overrides:
            return self
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        return replace(self, **overrides)

    @property
    def production(self) -> bool:
        """True when running for real patients."""
        return self.env == "production"

    @property
    def backend(self) -> str:
        """The SMS backend in use: explicit SMS_BACKEND, else twilio when credentials exist."""
        if self.sms_backend:
            return self.sms_backend
        has_creds = self.twilio_account_sid and self.twilio_auth_token
        return "twilio" if has_creds else "console"

    def check(self) -> None:
        """Refuse configurations that would be unsafe with real patients."""
        if self.backend not in ("twilio", "console"):
            raise ConfigError("SMS_BACKEND must be 'twilio' or 'console'")
        if self.backend == "twilio" and not (self.twilio_account_sid and self.twilio_auth_token):
            raise ConfigError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
        if self.backend == "twilio" and not (
            self.twilio_from_number or self.twilio_messaging_service_sid
        ):
            raise ConfigError(
                "SMS_BACKEND=twilio needs TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"
            )
        if self.production:
            if not self.twilio_auth_token:
                raise ConfigError("production needs TWILIO_AUTH_TOKEN to check webhook signatures")
            if not self.journal_encryption_key:
                raise ConfigError("production needs JOURNAL_ENCRYPTION_KEY")
            if not self.phone_hash_key:
                raise ConfigError("production needs PHONE_HASH_KEY")
            if not self.redis_url:
                raise ConfigError("production needs REDIS_URL")
            if self.clock_file:
                raise ConfigError("CLOCK_FILE is for tests and demos, not production")
            if self.allow_unsigned_webhooks:
                raise ConfigError("ALLOW_UNSIGNED_WEBHOOKS is for development, not production")
            if len(self.secret_key) < 32:
                # The care console signs its sessions with it, and it is always served.
                raise ConfigError("production needs SECRET_KEY (32 characters or more): it "
                                  "signs care console sessions and journal links")
            for problem in self.safety_gaps():
                raise ConfigError(f"production needs {problem}")
        if self.safety_check_timeout_minutes < 1:
            raise ConfigError("SAFETY_CHECK_TIMEOUT_MINUTES must be at least 1")

    def safety_gaps(self) -> list[str]:
        """What the safety path lacks: nobody to page, or no real contact in the replies."""
        gaps = []
        if not self.care_team_numbers:
            gaps.append("CARE_TEAM_NUMBERS (nobody would be paged about a crisis)")
        contact = self.clinic_contact.strip()
        if not contact or contact.casefold() == Settings.clinic_contact.casefold():
            gaps.append("CLINIC_CONTACT (a phone, email or URL participants can reach)")
        return gaps
