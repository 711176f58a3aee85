"""The clock seam: production reads the system clock, tests set the time.

Nothing in bot/ calls datetime.now() directly; it asks a Clock. FileClock lets
tests and demos control the time of separate worker processes too: it reads
the current instant from a file on every call (set CLOCK_FILE).

CLOCK_FILE holds one line, either an ISO-8601 instant with a UTC offset (time stands
still there: "2026-11-23T15:00:00+00:00") or a signed number of seconds ahead of the
real clock (time runs on from there: "+86400"). No file means the real time.
Writers replace the file atomically; a reader that still finds it empty or garbled (a
hand edit caught mid-write) reads again, then keeps the last time it read, so a
scheduler pass never crashes on it.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

CLOCK_FILE_FORMAT = ("one line: an ISO-8601 instant with its UTC offset "
                     "(2026-11-23T15:00:00+00:00) or signed seconds ahead (+86400)")
"""What a CLOCK_FILE holds (README, Configuration)."""

CLOCK_FILE_RETRIES = 5
"""Reads of a CLOCK_FILE that is being rewritten (empty or half-written) before giving up."""


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


class FileClock:
    """Reads an ISO-8601 instant from a file each call; the system clock when it is absent."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._last = None  # how the last good reading tells the time

    def now(self) -> datetime:
        """The instant in the file (UTC), else the real time."""
        problem = None
        for attempt in range(CLOCK_FILE_RETRIES):
            try:
                text = self.path.read_text().strip()
            except FileNotFoundError:
                return datetime.now(UTC)
            try:
                self._last = _reading(text)
                return self._last()
            except ValueError as exc:
                problem = exc
                time.sleep(0.01 * (attempt + 1))
        if self._last is not None:
            log.warning("CLOCK_FILE %s unreadable (%s); keeping the last time read",
                        self.path, problem)
            return self._last()
        raise ValueError(f"CLOCK_FILE {self.path} must hold {CLOCK_FILE_FORMAT}: {problem}")

    def set(self, at: datetime) -> None:
        """Stop time at an instant for every process reading this file."""
        self._write(at.astimezone(UTC).isoformat())

    def advance(self, **delta: float) -> datetime:
        """Move forward by timedelta(**delta); running time keeps running from there."""
        target = self.now() + timedelta(**delta)
        try:
            frozen = self.path.read_text().strip()[:1] not in ("+", "-")
        except FileNotFoundError:
            frozen = False
        if frozen:
            self.set(target)
        else:
            self._write(f"{(target - datetime.now(UTC)).total_seconds():+.3f}")
        return target

    def reset(self) -> None:
        """Back to the real time."""
        self.path.unlink(missing_ok=True)

    def _write(self, text: str) -> None:
        """Replace the file atomically, so a reader never sees half a line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _reading(text: str):
    """A function giving the time a CLOCK_FILE line says (ValueError when it says none)."""
    if text[:1] in ("+", "-"):
        ahead = timedelta(seconds=float(text))
        return lambda: datetime.now(UTC) + ahead
    at = parse_instant(text)
    return lambda: at


def parse_instant(text: str) -> datetime:
    """An ISO-8601 instant with a UTC offset, as UTC (ValueError otherwise)."""
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError("the time has no UTC offset")
    return at.astimezone(UTC)
