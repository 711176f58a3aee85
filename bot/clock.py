"""The clock seam: production reads the system clock, tests set the time.

Nothing in bot/ calls datetime.now() directly; it asks a Clock. FileClock lets
tests and demos control the time of separate worker processes too: it reads
the current instant from a file on every call (set CLOCK_FILE).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Clock(Protocol):
    """Something that says what time it is (always timezone-aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)


class FrozenClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, at: datetime):
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        self._at = at.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """The frozen instant."""
        with self._lock:
            return self._at

    def set(self, at: datetime) -> None:
        """Jump to an instant."""
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs a timezone-aware datetime")
        with self._lock:
            self._at = at.astimezone(UTC)

    def advance(self, **delta: float) -> datetime:
        """Move forward by timedelta(**delta) and return the new time."""
        with self._lock:
            self._at += timedelta(**delta)
            return self._at


CLOCK_FILE_FORMAT = "one ISO-8601 instant with its UTC offset, e.g. 2026-11-23T15:00:00+00:00"
"""What a CLOCK_FILE holds (README, Configuration)."""

CLOCK_FILE_RETRIES = 5
"""Reads of a CLOCK_FILE that is being rewritten (empty or half-written) before giving up."""


class FileClock:
    """Reads an ISO-8601 instant from a file each call; the system clock when it is absent.

    Writers replace the file atomically (`set`, `flask --app bot clock set`). A reader
    that still finds it empty or half-written (a hand edit, `echo > file`) reads again,
    then keeps the last instant it read, so a scheduler pass never crashes on it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._last: datetime | None = None

    def now(self) -> datetime:
        """The instant in the file (UTC), else the real time."""
        problem = None
        for attempt in range(CLOCK_FILE_RETRIES):
            try:
                text = self.path.read_text().strip()
            except FileNotFoundError:
                return datetime.now(UTC)
            try:
                self._last = parse_instant(text)
                return self._last
            except ValueError as exc:
                problem = exc
                time.sleep(0.01 * (attempt + 1))
        if self._last is not None:
            log.warning("CLOCK_FILE %s unreadable (%s); keeping the last time read",
                        self.path, problem)
            return self._last
        raise ValueError(f"CLOCK_FILE {self.path} must hold {CLOCK_FILE_FORMAT}: {problem}")

    def set(self, at: datetime) -> None:
        """Write an instant for every process reading this file (atomically)."""
        write_clock_file(self.path, at)


def parse_instant(text: str) -> datetime:
    """A CLOCK_FILE's content as an aware UTC datetime (ValueError when it is not one)."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("the time has no UTC offset")
    return at.astimezone(UTC)


def write_clock_file(path: str | Path, at: datetime) -> None:
    """Replace the file's instant atomically: readers see the old time or the new one."""
    if at.tzinfo is None:
        raise ValueError("a CLOCK_FILE time needs a UTC offset")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(at.astimezone(UTC).isoformat() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
