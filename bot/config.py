"""Settings from the environment (and a `.env` file), in one place.

Each setting is declared once, as a `Settings` field: name, type, default,
environment variable and meaning. `from_env`, `to_env` and the README's
configuration table come from those declarations (`python -m bot.settings_doc`
prints the table, `--write` puts it in README.md; a test checks the README holds it). Nothing is read
at import time: `Settings.from_env()` is called by the app factory.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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


def _lower(value: str) -> str:
    """A case-insensitive choice, stored lower-case."""
    return value.lower()


def _numbers(value: str) -> tuple[str, ...]:
    """A comma-separated list of phone numbers."""
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _join(value: tuple[str, ...]) -> str:
    """The comma-separated form of a list (inverse of _numbers)."""
    return ",".join(value)


DEV_CLOCK_FILE = "clock"
"""Development's shared clock under instance/ (absent: the real time; see bot/clock.py)."""


def _dev_clock_file(bot_env: str | None, instance: str) -> str:
    """Development shares one clock file between web, worker, clock and CLI processes."""
    if (bot_env or "development").lower() != "development":
        return ""
    return str(Path(instance) / DEV_CLOCK_FILE)


def _default_clock_file(values: dict) -> str:
    """CLOCK_FILE unset: development's shared clock file, else none (the real time)."""
    return _dev_clock_file(values["env"], values["instance_path"])


def _default_redis_url(values: dict) -> str:
    """REDIS_URL unset: the Redis `make run` published for this instance, if any."""
    return published_redis_url(values["instance_path"], values["env"])


def _flag(value: bool) -> str:
    """A boolean setting as the environment writes it (inverse of _bool)."""
    return "1" if value else ""


def _default_database(values: dict) -> str:
    """SQLite under the instance folder, when DATABASE_URL is not set."""
    return f"sqlite:///{Path(values['instance_path']) / 'bot.sqlite3'}"


@dataclass(frozen=True)
class EnvVar:
    """How one Settings field is read from and written to the environment, and documented."""

    name: str  # the environment variable
    meaning: str  # the README's "Meaning" column
    parse: Callable[[str], Any] = str  # a non-empty value -> the field's value
    dump: Callable[[Any], str] = str  # the field's value -> what parse reads back
    shown_default: str | None = None  # README "Default" text; None: the field's default
    fallback: Callable[[dict], Any] | None = None  # unset: computed from earlier fields


def setting(env: str, meaning: str, default: Any = "", *, shown_default: str | None = None,
            parse: Callable[[str], Any] = str, dump: Callable[[Any], str] = str,
            fallback: Callable[[dict], Any] | None = None):
    """A Settings field read from `env`: its one declaration (see Settings)."""
    var = EnvVar(env, meaning, parse, dump, shown_default, fallback)
    if isinstance(default, tuple):
        return field(default_factory=lambda: default, metadata={"env": var})
    return field(default=default, metadata={"env": var})


DEFAULT_CLINIC_CONTACT = "your care team"
"""CLINIC_CONTACT's default: the words, not a way to reach anyone (production refuses it)."""


@dataclass(frozen=True)
class Settings:
    """Everything the bot can be configured with.

    Each setting is declared once, here: attribute name, type, default, environment
    variable and meaning. `from_env`, `to_env` and the README's configuration table
    (`python -m bot.settings_doc`) are derived from these lines, and
    tests/test_config.py fails when the README's table disagrees. Adding a setting is
    a one-line change: one `name: type = setting("ENV_VAR", "meaning", default)` line
    here, then `python -m bot.settings_doc --write` for the README table. An unset or
    empty variable means the default.
    """

    env: str = setting("BOT_ENV", "`production` enforces the checks above; `test` for the suite",
                       "development", parse=_lower)
    database_url: str = setting(
        "DATABASE_URL",
        "SQLAlchemy URL; PostgreSQL as `postgresql+psycopg://user@host/db`",
        shown_default="`sqlite:///instance/bot.sqlite3`", fallback=_default_database)
    redis_url: str = setting(
        "REDIS_URL", "Redis for RQ jobs and the shared send-rate limit",
        shown_default="embedded under `instance/redis/` (`make run` only; other commands "
                      "read its URL from `instance/redis.url`)",
        fallback=_default_redis_url)
    twilio_account_sid: str = setting("TWILIO_ACCOUNT_SID", "Twilio account")
    twilio_auth_token: str = setting(
        "TWILIO_AUTH_TOKEN",
        "Signs webhooks and authenticates API calls; required in production",
        shown_default="dev: generated in `instance/webhook_token.key`")
    allow_unsigned_webhooks: bool = setting(
        "ALLOW_UNSIGNED_WEBHOOKS",
        "`1` accepts webhook requests with no signature (development only; production "
        "refuses to start)",
        False, shown_default="off", parse=_bool, dump=_flag)
    twilio_from_number: str = setting("TWILIO_FROM_NUMBER", "Sending number (E.164) ...")
    twilio_messaging_service_sid: str = setting("TWILIO_MESSAGING_SERVICE_SID",
                                                "... or a Messaging Service")
    twilio_api_base_url: str = setting(
        "TWILIO_API_BASE_URL",
        "Send the SDK's REST calls elsewhere (a staging or the local fake server, "
        "`python -m bot.fake_twilio`)")
    public_base_url: str = setting(
        "PUBLIC_BASE_URL", "The URL Twilio calls; used for signatures and status callbacks",
        parse=lambda value: value.rstrip("/"))
    sms_backend: str = setting("SMS_BACKEND", "`twilio` or `console` (prints texts)",
                               shown_default="`twilio` with credentials, else `console`",
                               parse=_lower)
    sms_max_per_second: float = setting(
        "SMS_MAX_PER_SECOND",
        "Sender throughput, enforced across all workers and hosts "
        "(US long code: 1; toll-free: 3; short code: 100)",
        1.0, shown_default="`1`", parse=float, dump=repr)
    clinic_name: str = setting("CLINIC_NAME", "In the invitation and HELP", "your clinic")
    clinic_contact: str = setting(
        "CLINIC_CONTACT",
        "Phone, email or URL in HELP, urgent and low-mood replies (\"your care team at "
        "...\"); required in production",
        "your care team")
    program_name: str = setting("PROGRAM_NAME", "The program's name in texts (CTIA)",
                                "Integration Companion")
    care_team_numbers: tuple[str, ...] = setting(
        "CARE_TEAM_NUMBERS",
        "Comma-separated E.164 numbers paged for crisis, urgent and safety-check alerts; "
        "required in production",
        (), parse=_numbers, dump=_join)
    safety_check_timeout_minutes: int = setting(
        "SAFETY_CHECK_TIMEOUT_MINUTES",
        "An unanswered safety question pages the care team after this long", 30, parse=int)
    spool_path: str = setting(
        "SPOOL_PATH",
        "Append-only file for inbound texts when the database and Redis are both down "
        "(replayed by the clock process on the same host)",
        shown_default="`instance/spool/inbound.jsonl`")
    journal_encryption_key: str = setting(
        "JOURNAL_ENCRYPTION_KEY",
        "Comma-separated Fernet keys, newest first; required in production",
        shown_default="dev: generated in `instance/journal.key`")
    phone_hash_key: str = setting(
        "PHONE_HASH_KEY",
        "Secret for the keyed hash used to look numbers up; required in production, "
        "never rotate",
        shown_default="dev: generated in `instance/phone_hash.key`")
    default_region: str = setting("DEFAULT_REGION",
                                  "Region for numbers typed without a country code", "US")
    default_timezone: str = setting("DEFAULT_TIMEZONE", "When a number's zone can't be guessed",
                                    "America/New_York")
    instance_path: str = setting("INSTANCE_PATH",
                                 "Where SQLite, dev keys and the embedded Redis live",
                                 str(DEFAULT_INSTANCE), shown_default="`./instance`")
    log_level: str = setting("LOG_LEVEL", "Python logging level", "INFO")
    queue_name: str = setting("RQ_QUEUE", "RQ queue name", "integration-bot")
    clock_file: str = setting(
        "CLOCK_FILE",
        "Read \"now\" from this file: an ISO-8601 instant with offset (time stands still, "
        "`2026-11-23T15:00:00+00:00`) or signed seconds ahead of the real time (time runs "
        "on, `+86400`); no file means the real time. Written atomically by the simulator "
        "and `flask --app bot clock set/advance`; a reader that finds it empty or "
        "half-written reads again, then keeps the last time it read. Refused in production",
        shown_default="development: `instance/clock`", fallback=_default_clock_file)
    secret_key: str = setting(
        "SECRET_KEY",
        "Signs journal links, page forms (CSRF) and care console sessions; required in "
        "production (32+ characters, e.g. `python -c \"import secrets; "
        "print(secrets.token_urlsafe(48))\"`). Changing it ends every open journal link "
        "and console session",
        shown_default="dev: generated in `instance/secret.key`")
    care_color: str = setting("CARE_COLOR",
                              "The console's accent colour (with `CLINIC_NAME` in its header)",
                              "#2f6f73")
    care_silent_after: int = setting(
        "CARE_SILENT_AFTER",
        "The Now page lists an active participant as \"stopped replying\" after this many "
        "unanswered nudges in a row",
        3, parse=int)
    journal_share_default: bool = setting(
        "JOURNAL_SHARE_DEFAULT",
        "Whether the care team sees journal answers of participants who never texted SHARE",
        False, shown_default="off", parse=_bool, dump=_flag)
    safety_learned_stage: bool = setting(
        "SAFETY_LEARNED_STAGE",
        "Whether the learned safety net (flows/definitions/safety_model.json) may raise a "
        "text the safety rules leave at none to a safety check, and confirm a rules' "
        "check as a crisis",
        True, shown_default="on", parse=_bool, dump=lambda on: "1" if on else "0")
    proxy_hops: int = setting(
        "PROXY_HOPS",
        "Reverse proxies in front of `web` whose `X-Forwarded-*` headers are trusted "
        "(client address for sign-in throttling)",
        0, parse=int)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Build settings from environ (default os.environ plus a .env file)."""
        if environ is None:
            from dotenv import dotenv_values

            environ = {**dotenv_values(PROJECT_ROOT / ".env"), **os.environ}
        values: dict[str, Any] = {}
        # Fallbacks may read other fields (DATABASE_URL's reads INSTANCE_PATH): those last.
        for f in sorted(fields(cls), key=lambda f: f.metadata["env"].fallback is not None):
            var = f.metadata["env"]
            raw = environ.get(var.name)
            if raw:
                values[f.name] = var.parse(raw)
            elif var.fallback is not None:
                values[f.name] = var.fallback(values)
            else:
                values[f.name] = f.default_factory() if callable(f.default_factory) else f.default
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that makes from_env() rebuild these settings (for worker processes)."""
        return {f.metadata["env"].name: f.metadata["env"].dump(getattr(self, f.name))
                for f in fields(self)}

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
        if not contact or contact.casefold() == DEFAULT_CLINIC_CONTACT.casefold():
            gaps.append("CLINIC_CONTACT (a phone, email or URL participants can reach)")
        return gaps


PROCESS_VARIABLES: tuple[tuple[str, str, str], ...] = (
    ("`PORT`, `WEB_CONCURRENCY`, `WEB_THREADS`", "`5000`, `2`, `8`",
     "gunicorn bind port, worker processes and threads per process (`gunicorn.conf.py`)"),
    ("`BIND_ADDRESS`", "`127.0.0.1`", "Address gunicorn binds (Procfile `web`); `0.0.0.0` to "
     "accept connections from other machines"),
    ("`BOT_OPERATOR`", "OS user", "Name written to the audit log by operator commands"),
)
"""Variables read outside Settings (gunicorn.conf.py, bot/cli.py), as README
rows: (variable, default, meaning)."""
