"""Keeps one Procfile process alive under `make run`: a child that dies is started again.

honcho stops every process when one exits; on one machine a worker killed by the
OOM killer or a Redis hiccup must not take the web process down with it. Each entry
`make run` starts is wrapped as `python -m bot.supervise NAME`, which runs the
Procfile's command for NAME and restarts it (with a back-off) until it is told to stop.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot.config import PROJECT_ROOT

log = logging.getLogger(__name__)

RESTART_FIRST = 1.0
"""Seconds before restarting a child that died."""

RESTART_MAX = 30.0
"""Longest pause before a restart (each quick death doubles the pause)."""

HEALTHY_AFTER = 60.0
"""A child that ran this long before dying is restarted after RESTART_FIRST again."""


def procfile_command(name: str, procfile: Path = PROJECT_ROOT / "Procfile") -> str:
    """The command of one Procfile entry."""
    for line in procfile.read_text().splitlines():
        key, sep, command = line.partition(":")
        if sep and key.strip() == name:
            return command.strip()
    raise KeyError(f"no {name!r} entry in {procfile}")


def wrapped_procfile(names: tuple[str, ...], path: Path) -> Path:
    """Write a Procfile whose entries run under this supervisor; return its path."""
    python = sys.executable
    path.write_text("".join(f"{name}: {python} -m bot.supervise {name}\n" for name in names))
    return path


def supervise(name: str, command: str) -> int:
    """Run command with sh, restarting it when it dies, until SIGTERM or SIGINT."""
    stopping = False
    child: subprocess.Popen | None = None

    def stop(signum, _frame) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = RESTART_FIRST
    while True:
        started = time.monotonic()
        child = subprocess.Popen(["/bin/sh", "-c", f"exec {command}"])
        code = child.wait()
        if stopping:
            return code
        if time.monotonic() - started > HEALTHY_AFTER:
            delay = RESTART_FIRST
        print(f"supervise: {name} exited with code {code}; restarting in {delay:.0f}s",
              file=sys.stderr, flush=True)
        end = time.monotonic() + delay
        while not stopping and time.monotonic() < end:
            time.sleep(0.1)
        if stopping:
            return code
        delay = min(delay * 2, RESTART_MAX)


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.supervise NAME`: run and keep running the Procfile entry NAME."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bot.supervise NAME", file=sys.stderr)
        return 2
    return supervise(args[0], procfile_command(args[0]))


if __name__ == "__main__":
    sys.exit(main())
