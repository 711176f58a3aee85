"""`flask --app bot chat PHONE`: a terminal conversation that shows what the phone would see.

Replies to what you type come back at once. Texts that go out on their own (the
scheduled nudges the `make run` worker sends, an invitation, a retried reply) are
shown as they go out, marked "bot (sent)>". While chatting, log lines go to
instance/chat.log instead of the terminal, so they don't interleave with the talk.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from sqlalchemy import func, select

from bot.logsafe import PhiFilter
from bot.storage.models import Message

POLL_SECONDS = 2.0
"""How often an interactive chat looks for texts that went out on their own."""

CHAT_LOG = "chat.log"


def log_to_file(instance_path: str):
    """Send log lines to instance/chat.log instead of the terminal; returns (path, undo)."""
    path = Path(instance_path) / CHAT_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    removed = []
    for name in ("", "bot", "flows"):  # Flask gives the app's logger its own stream handler
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if type(old) is logging.StreamHandler:  # the terminal, not a file or a capture
                logger.removeHandler(old)
                removed.append((logger, old))
    handler.addFilter(PhiFilter())  # the file is a log like any other: numbers masked
    root = logging.getLogger()
    root.addHandler(handler)

    def undo() -> None:
        root.removeHandler(handler)
        handler.close()
        for logger, old in removed:
            logger.addHandler(old)

    return path, undo


class SentFeed:
    """Texts sent to one participant that were not replies typed in this chat."""

    def __init__(self, services, participant_id: int | None):
        self.services, self.participant_id = services, participant_id
        self.lock = threading.Lock()
        with services.db.session() as db:
            self.last_id = db.scalar(select(func.max(Message.id))) or 0

    def follow(self, participant_id: int) -> None:
        """Watch this participant (known once their first text is stored)."""
        self.participant_id = participant_id

    def new_texts(self) -> list[str]:
        """Bodies of outbound texts sent since the last call, oldest first."""
        if self.participant_id is None:
            return []
        with self.lock, self.services.db.session() as db:
            rows = db.execute(select(Message.id, Message.body).where(
                Message.participant_id == self.participant_id, Message.direction == "out",
                Message.reply_to_id.is_(None), Message.id > self.last_id,
            ).order_by(Message.id)).all()
            if rows:
                self.last_id = rows[-1].id
            return [body or "" for _, body in rows]


def poll_in_background(feed: SentFeed, echo, stop: threading.Event) -> threading.Thread:
    """Print texts that go out on their own while the person types."""
    def run() -> None:
        while not stop.wait(POLL_SECONDS):
            try:
                for text in feed.new_texts():
                    echo(f"\nbot (sent)> {text}")
            except Exception:
                logging.getLogger(__name__).exception("chat feed failed")

    thread = threading.Thread(target=run, name="chat-feed", daemon=True)
    thread.start()
    return thread
