"""Benchmarks, each measured against a baseline taken in the same run.

Absolute numbers depend on the machine; the ratio to a baseline run moments
earlier on the same machine does not (much). Shared here: where the database
and Redis come from (TEST_DATABASE_URL / REDIS_URL when set, else a temporary
SQLite file and an embedded redis-server), settings, and small statistics.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "bench-auth-token"
FROM_NUMBER = "+15005550006"
PHONE_HASH_KEY = "bench-pepper"


def database_url(tmpdir: str | os.PathLike) -> str:
    """TEST_DATABASE_URL when set, else a SQLite file under tmpdir."""
    return os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{Path(tmpdir) / 'bench.sqlite3'}"


def database_kind(url: str) -> str:
    """'sqlite' or 'postgresql' (the dialect, without the driver)."""
    return url.split(":", 1)[0].split("+", 1)[0]


def fresh_database(url: str):
    """A Database at the latest migration, emptied first (PostgreSQL tables are dropped)."""
    from bot.storage import Database

    db = Database(url)
    if not url.startswith("sqlite"):
        db.drop_all()  # an earlier run may have left its tables behind
    db.upgrade()
    return db


@contextmanager
def redis_server(tmpdir: str | os.PathLike, url: str | None = None) -> Iterator[str]:
    """url, else REDIS_URL, else an embedded redis-server stopped on exit; flushed first."""
    from bot.redis_conn import connect, start_embedded

    url = url or os.environ.get("REDIS_URL")
    proc: subprocess.Popen | None = None
    if not url:
        url, proc = start_embedded(Path(tmpdir) / "redis")
    try:
        conn = connect(url)
        conn.flushdb()
        conn.close()
        yield url
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)


def bench_settings(tmpdir: str | os.PathLike, db_url: str, **overrides):
    """Settings like the test suite's: the twilio backend, fresh keys, instance under tmpdir."""
    from cryptography.fernet import Fernet

    from bot.config import Settings

    base = dict(
        env="test", instance_path=str(Path(tmpdir) / "instance"), database_url=db_url,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_from_number=FROM_NUMBER, sms_backend="twilio",
        journal_encryption_key=Fernet.generate_key().decode(), phone_hash_key=PHONE_HASH_KEY,
        clinic_name="Harbor Clinic", clinic_contact="555-0100", log_level="WARNING",
        care_team_numbers=(),
    )
    base.update(overrides)
    return Settings(**base)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of values fall (nearest rank; 0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    """The median (0.0 when empty)."""
    return statistics.median(values) if values else 0.0


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 0.0 when the denominator is zero."""
    return numerator / denominator if denominator else 0.0


def print_table(rows: Sequence[tuple[str, ...]], header: tuple[str, ...]) -> None:
    """Aligned columns: what (left), then baseline, measured and so on (right)."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                        for i, cell in enumerate(row)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def print_json(result: dict) -> None:
    """One JSON line, for scripts and CI logs."""
    print(json.dumps(result, sort_keys=True))
