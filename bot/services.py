"""Wiring: builds the adapters every process needs from one Settings.

The web app, RQ workers, the clock process and CLI commands all call
`build_services(settings)` so they share one way of reaching the database,
Redis, the SMS sender, the clock and the loaded definitions.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bot import sms
from bot.clock import Clock, FileClock, SystemClock
from bot.config import DEFAULT_CLINIC_CONTACT, ConfigError, Settings
from bot.crypto import Keyring, load_or_create_dev_key, set_keyring
from bot.ratelimit import NoLimit, RateLimiter
from bot.redis_conn import connect
from bot.storage import Database
from flows import loader
from flows.engine import Engine

log = logging.getLogger(__name__)

PHONE_HASH_KEY_FILE = "phone_hash.key"


@dataclass
class Services:
    """The adapters of one process, built once and shared."""

    settings: Settings
    db: Database
    clock: Clock
    definitions: loader.Definitions
    phone_hash_key: bytes
    _sender: object | None = field(default=None, repr=False)
    _redis_url: str | None = field(default=None, repr=False)

    @cached_property
    def engine(self) -> Engine:
        """The flow engine over the loaded definitions."""
        return Engine(self.definitions, learned_safety=self.settings.safety_learned_stage)

    @property
    def variables(self) -> dict[str, str]:
        """Clinic-wide placeholders for the words."""
        s = self.settings
        return {"program": s.program_name, "clinic_name": s.clinic_name,
                "clinic_contact": s.clinic_contact,
                "care_team": care_team_phrase(s.clinic_contact),
                "care_team_es": care_team_phrase(s.clinic_contact, lang="es")}

    @property
    def sender(self):
        """The SMS sender for this process (Twilio or console)."""
        if self._sender is None:
            self._sender = make_sender(self.settings)
        return self._sender

    @property
    def redis_url(self) -> str:
        """The Redis URL (settings, or the embedded server started for this run)."""
        return self._redis_url or self.settings.redis_url

    @cached_property
    def redis(self):
        """A Redis client (raises when no Redis is configured)."""
        if not self.redis_url:
            raise ConfigError("no REDIS_URL configured")
        return connect(self.redis_url)

    @cached_property
    def rate_limiter(self):
        """The sender rate limit shared through Redis (none without Redis)."""
        if not self.redis_url:
            return NoLimit()
        return RateLimiter(self.redis, self.settings.sms_max_per_second)

    @cached_property
    def queue(self):
        """The RQ queue that carries sends and retries."""
        from rq import Queue

        return Queue(self.settings.queue_name, connection=self.redis)


def care_team_phrase(contact: str, lang: str = "en") -> str:
    """'your care team at 555-0100', or just 'your care team' when no real contact is set
    (in Spanish with lang="es": 'tu equipo de atencion al 555-0100')."""
    contact = (contact or "").strip()
    team, at = ("tu equipo de atencion", "al") if lang == "es" else ("your care team", "at")
    if not contact or contact.casefold() == DEFAULT_CLINIC_CONTACT.casefold():
        return team
    return f"{team} {at} {contact}"


def make_sender(settings: Settings):
    """The configured SMS backend."""
    if settings.backend == "twilio":
        return sms.TwilioSender(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            from_number=settings.twilio_from_number or None,
            messaging_service_sid=settings.twilio_messaging_service_sid or None,
            api_base_url=settings.twilio_api_base_url or None,
        )
    return sms.ConsoleSender()


def build_services(settings: Settings, *, clock: Clock | None = None, sender=None,
                   db: Database | None = None, redis_url: str | None = None) -> Services:
    """Check settings, install the encryption keys, and build the adapters."""
    settings.check()
    for gap in settings.safety_gaps():  # production refuses these in check()
        log.warning("SAFETY: no %s. Crisis replies will not say the care team was told.", gap)
    configure_keys(settings)
    if clock is None:
        clock = FileClock(settings.clock_file) if settings.clock_file else SystemClock()
    return Services(
        settings=settings,
        db=db or Database(settings.database_url),
        clock=clock,
        definitions=loader.load(),
        phone_hash_key=_phone_hash_key(settings),
        _sender=sender,
        _redis_url=redis_url,
    )


def configure_keys(settings: Settings) -> None:
    """Install the journal keyring: JOURNAL_ENCRYPTION_KEY, or a dev key under instance/."""
    if settings.journal_encryption_key:
        set_keyring(Keyring.from_setting(settings.journal_encryption_key))
        return
    if settings.production:
        raise ConfigError("production needs JOURNAL_ENCRYPTION_KEY")
    key, created = load_or_create_dev_key(settings.instance_path)
    if created:
        log.warning("no JOURNAL_ENCRYPTION_KEY: generated a development key in %s",
                    settings.instance_path)
    set_keyring(Keyring([key]))


def _phone_hash_key(settings: Settings) -> bytes:
    """The secret that keys phone-number hashes (PHONE_HASH_KEY, or a dev file)."""
    if settings.phone_hash_key:
        return settings.phone_hash_key.encode()
    path = Path(settings.instance_path) / PHONE_HASH_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()
