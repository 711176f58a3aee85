"""Answering a replayed MessageSid with the reply its first copy got.

Twilio retries a webhook it did not hear back from, and a retry can arrive while the
first copy is still being processed. The copy waits (briefly, well inside Twilio's
15 s) for the first to finish and answers with the same stored replies.
"""

from __future__ import annotations

import time

from bot.runner import stored_replies
from bot.storage.models import Message

REPLAY_WAIT = 8.0
"""Seconds a replay waits for its first copy to finish (Twilio gives up after 15 s)."""

REPLAY_POLL = 0.05
"""Seconds between looks at the first copy's progress."""


def first_copy_outcome(services, message_id: int) -> tuple[str, list[str]]:
    """Wait for the first copy: ("processed", replies), ("failed", []) or ("pending", [])."""
    deadline = time.monotonic() + REPLAY_WAIT
    while True:
        replies = stored_replies(services, message_id)
        if replies is not None:
            return "processed", replies
        with services.db.session() as db:
            status = db.get(Message, message_id).status
        if status == "failed":
            return "failed", []
        if time.monotonic() >= deadline:
            return "pending", []
        time.sleep(REPLAY_POLL)
