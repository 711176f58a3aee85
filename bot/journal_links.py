"""Private links to a participant's journal page: issued by JOURNAL, checked by the page.

A link carries an itsdangerous token (signed with SECRET_KEY, timestamped) that names
one journal_links row. It opens the page only while the signature holds, it is under
LINK_LIFETIME old, and its row is not revoked: a new link, STOP or DELETE revokes it.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import datetime, timedelta
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update

from bot.config import ConfigError, Settings
from bot.storage.models import JournalLink, Participant

LINK_LIFETIME = timedelta(hours=24)
"""How long a journal link opens the page."""

SECRET_KEY_FILE = "secret.key"
"""Development's generated SECRET_KEY, under instance/."""

_SALT = "journal-link"


def secret_key(settings: Settings) -> str:
    """SECRET_KEY, or outside production a key generated once under instance/."""
    if settings.secret_key:
        return settings.secret_key
    if settings.production:
        raise ConfigError("production needs SECRET_KEY to sign journal links")
    path = Path(settings.instance_path) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # First writer wins: web workers starting together must all sign with one key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    for _ in range(50):  # another process may be between creating and writing the file
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise ConfigError(f"{path} is empty: delete it or set SECRET_KEY")


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(settings), salt=_SALT)


def issue(db, settings: Settings, participant: Participant, now: datetime) -> str:
    """A fresh token for the participant's page; every earlier link stops working."""
    revoke_all(db, participant.id, now)
    link = JournalLink(participant_id=participant.id, created_at=now,
                       expires_at=now + LINK_LIFETIME)
    db.add(link)
    db.flush()
    return _serializer(settings).dumps([link.id, participant.id])


def page_url(settings: Settings, token: str) -> str:
    """The link as texted: PUBLIC_BASE_URL + /j/<token>."""
    return f"{settings.public_base_url}/j/{token}"


def revoke_all(db, participant_id: int, now: datetime) -> int:
    """Close every open link of the participant (new link, STOP, DELETE)."""
    result = db.execute(update(JournalLink).where(
        JournalLink.participant_id == participant_id, JournalLink.revoked_at.is_(None),
    ).values(revoked_at=now))
    return result.rowcount or 0


def participant_for(db, settings: Settings, token: str, now: datetime) -> Participant | None:
    """The participant a valid, unexpired, unrevoked token belongs to; None otherwise."""
    try:
        # The token's own (real-time) timestamp is checked here and the row's expiry below
        # by the injected clock: a link ends after 24 hours of either.
        link_id, participant_id = _serializer(settings).loads(
            token, max_age=int(LINK_LIFETIME.total_seconds()))
    except (BadSignature, ValueError, TypeError):
        return None
    link = db.get(JournalLink, link_id) if isinstance(link_id, int) else None
    if link is None or link.participant_id != participant_id or link.revoked_at is not None:
        return None
    if now >= link.expires_at or now < link.created_at - timedelta(minutes=5):
        return None
    participant = db.get(Participant, participant_id)
    if participant is None or participant.status in ("deleted", "opted_out"):
        return None
    return participant
