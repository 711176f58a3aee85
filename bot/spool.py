"""When the database is down: answer risky texts anyway, page directly, and lose no text.

The webhook assesses every text before it touches the database. If the database
cannot be reached:
- a crisis, urgent or check text still gets its fixed reply in the TwiML, and the
  care team is paged straight through the SMS provider (at most once per
  participant and level per OUTAGE_PAGE_EVERY, so a flood of texts is one page);
- every text is spooled, encrypted: into a Redis hash keyed by MessageSid, or, when
  Redis is down too, appended to a local file (SPOOL_PATH);
- `replay()` (each clock pass) moves spooled texts into the database in the order
  they arrived. Exactly once: the messages table is unique on MessageSid, so a text
  spooled twice (a Twilio retry, a replay that crashed half-way) is stored once and
  processed once; an entry leaves the spool only after its row is committed.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from bot import runner
from bot.crypto import get_keyring
from bot.logsafe import mask_phone
from bot.participants import hash_phone
from bot.phones import parse_address

log = logging.getLogger(__name__)

REDIS_KEY = "integration-bot:inbound-spool"
"""Redis hash: MessageSid -> encrypted entry."""

OUTAGE_PAGE_KEY = "integration-bot:outage-page:{who}:{level}"

OUTAGE_PAGE_EVERY = timedelta(minutes=15)
"""During an outage, the care team is paged about a participant and level at most this often."""

OUTAGE_REPLY = {"crisis": None, "urgent": "safety.urgent", "check": "safety.check_repeat"}
"""The reply while the database is down (None: the detector's own crisis template). A check
text gets support and 988 instead of the question: its answer could not be followed up."""

_local_lock = threading.Lock()


def _local_pages(services) -> dict[str, datetime]:
    """Outage pages this process sent (when Redis is down too), kept on its adapters."""
    pages = getattr(services, "_outage_pages", None)
    if pages is None:
        pages = services._outage_pages = {}
    return pages


def spool_file(services) -> Path:
    """The append-only spool file of this host."""
    configured = services.settings.spool_path
    return Path(configured) if configured else Path(services.settings.instance_path) / \
        "spool" / "inbound.jsonl"


def file_waiting(services) -> bool:
    """Whether this host's spool file (or one a crashed replay left) holds texts."""
    path = spool_file(services)
    return path.exists() or (path.parent.exists()
                             and any(path.parent.glob(f"{path.name}.replaying-*")))


def database_down(services, inbound: runner.Inbound, assessment, received_at: datetime,
                  reply_key) -> list[str]:
    """Spool the text, page the care team about a risky one; return the TwiML texts."""
    level = assessment.level if (assessment.alert or assessment.level == "check") else None
    texts = risky_reply(services, inbound, assessment, reply_key) if level else []
    entry = {"sid": inbound.sid, "from": inbound.address.phone,
             "channel": inbound.address.channel, "body": inbound.body,
             "num_media": inbound.num_media, "opt_out_type": inbound.opt_out_type,
             "received_at": received_at.isoformat(), "seq": time.time_ns(),
             "answered": bool(texts)}
    save(services, entry)
    log.error("database unreachable: inbound %s spooled (risk=%s)", inbound.sid, level or "-")
    return texts


def risky_reply(services, inbound: runner.Inbound, assessment, reply_key) -> list[str]:
    """Without a working turn: page the care team directly, then the fixed reply (honestly)."""
    level = assessment.level
    key = OUTAGE_REPLY.get(level) or reply_key(assessment) or "safety.crisis"
    told = _page_directly(services, inbound, level)
    if told and key + ".told" in services.definitions.messages:
        key += ".told"
    return [services.definitions.render(key, services.variables)]


def save(services, entry: dict) -> str:
    """Keep one entry, encrypted: Redis first, the local file when Redis fails; returns where."""
    token = get_keyring().encrypt(json.dumps(entry, sort_keys=True))
    try:
        services.redis.hsetnx(REDIS_KEY, entry["sid"], token)
        return "redis"
    except Exception:
        log.warning("Redis unreachable too: spooling inbound %s to the local file", entry["sid"])
    path = spool_file(services)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write of one line: O_APPEND keeps concurrent writers' lines whole.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (token + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return "file"


def _page_directly(services, inbound: runner.Inbound, level: str) -> bool:
    """Page every care-team number without the database; True when one page was accepted."""
    numbers = services.settings.care_team_numbers
    if not numbers:
        log.error("database down and CARE_TEAM_NUMBERS empty: nobody paged about a %s", level)
        return False
    who = hash_phone(inbound.address.phone, services.phone_hash_key)[:16]
    if not _first_page(services, who, level):
        return True  # paged within OUTAGE_PAGE_EVERY (accepted, or we would not have marked it)
    text = (f"{services.settings.program_name} alert: {level.upper()} from the participant "
            f"with phone ending {inbound.address.phone[-4:]}. The system could not record it "
            f"yet: the alert will be listed once it can. Please reach out.")
    accepted = 0
    for number in numbers:
        try:
            services.sender.send(number, text)
            accepted += 1
        except Exception:
            log.exception("outage page to %s failed", mask_phone(number))
    if not accepted:
        _forget_page(services, who, level)  # let the next text try again
    return accepted > 0


def _first_page(services, who: str, level: str) -> bool:
    """True for the first outage page about (participant, level) in OUTAGE_PAGE_EVERY."""
    key = OUTAGE_PAGE_KEY.format(who=who, level=level)
    seconds = int(OUTAGE_PAGE_EVERY.total_seconds())
    try:
        return bool(services.redis.set(key, "1", nx=True, ex=seconds))
    except Exception:  # Redis is down too: remember it in this process
        now = services.clock.now()
        with _local_lock:
            pages = _local_pages(services)
            if key in pages and now - pages[key] < OUTAGE_PAGE_EVERY:
                return False
            pages[key] = now
            return True


def _forget_page(services, who: str, level: str) -> None:
    key = OUTAGE_PAGE_KEY.format(who=who, level=level)
    try:
        services.redis.delete(key)
    except Exception:
        with _local_lock:
            _local_pages(services).pop(key, None)


# ---------------------------------------------------------------- replay


def replay(services) -> int:
    """Move spooled texts into the database once it answers; returns how many were new."""
    if not services.db.ping():
        return 0
    entries: list[tuple[dict, object]] = []  # (entry, how to drop it once stored)
    try:
        for sid, token in (services.redis.hgetall(REDIS_KEY) or {}).items():
            entries.append((_decode(token), ("redis", sid)))
    except Exception:
        log.warning("Redis unreachable: replaying only the local spool file")
    claimed = _claim_files(services)
    for path in claimed:
        for line in path.read_text().splitlines():
            if line.strip():
                entries.append((_decode(line), None))
    entries.sort(key=lambda item: (item[0]["received_at"], item[0].get("seq", 0)))
    replayed = 0
    try:
        for entry, source in entries:
            replayed += _replay_one(services, entry)
            if source is not None:
                services.redis.hdel(REDIS_KEY, source[1])
    except Exception:  # the database went again: what is left stays spooled (files too)
        log.exception("replay stopped after %d texts; the rest stay spooled", replayed)
        return replayed
    for path in claimed:
        path.unlink()  # every line is in the database now
    if entries:
        log.warning("replayed %d spooled inbound texts (%d new)", len(entries), replayed)
    return replayed


def _decode(token) -> dict:
    if isinstance(token, bytes):
        token = token.decode()
    return json.loads(get_keyring().decrypt(token.strip()))


def _claim_files(services) -> list[Path]:
    """Take the spool file away from writers (atomic rename) plus any left by a crashed replay."""
    path = spool_file(services)
    if path.exists():
        path.rename(path.with_name(f"{path.name}.replaying-{time.time_ns()}"))
    return sorted(path.parent.glob(f"{path.name}.replaying-*")) if path.parent.exists() else []


def _replay_one(services, entry: dict) -> int:
    """Store one spooled text (unique on its sid) and run its turn; 1 when it was new."""
    address = parse_address(entry["from"], services.settings.default_region)
    inbound = runner.Inbound(sid=entry["sid"], address=address, body=entry["body"],
                             num_media=entry["num_media"], opt_out_type=entry["opt_out_type"])
    at = datetime.fromisoformat(entry["received_at"])
    message_id, new = runner.record_inbound(services, inbound, at=at)
    if not new:
        return 0
    # A risky text was answered in the TwiML already: record the turn's replies without
    # sending them again. Anything else gets its (late) answer through the REST API.
    via = "twiml" if entry.get("answered") else "rest"
    try:
        runner.process_inbound(services, message_id, via=via,
                               opt_out_type=entry["opt_out_type"])
    except Exception:  # stored: the stuck-inbound retry takes it from here
        log.exception("replayed inbound %s failed to process; a worker will retry it",
                      entry["sid"])
        runner.mark_failed(services, message_id)
    return 1
