"""`make run`: the whole bot on one machine with embedded defaults.

SQLite under instance/, an embedded redis-server when REDIS_URL is not set,
the console SMS backend when there are no Twilio credentials; migrations are
applied, then honcho runs the Procfile's web, worker and clock processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from bot.config import PROJECT_ROOT, REDIS_URL_FILE, Settings, published_redis_url
from bot.redis_conn import start_embedded
from bot.supervise import wrapped_procfile

PROCESSES = ("web", "worker", "clock")
"""Procfile entries `make run` starts (release runs first, inline)."""


def main() -> int:
    """Start everything and wait; Ctrl-C stops it all."""
    signal.signal(signal.SIGTERM, _interrupt)
    settings = Settings.from_env()
    if settings.redis_url and settings.redis_url == published_redis_url(
            settings.instance_path, settings.env):
        # The URL an earlier `make run` published, not one the developer set: start ours.
        settings = settings.with_overrides({"redis_url": ""})
    env = dict(os.environ)
    env.setdefault("PORT", "5000")
    env.setdefault("BIND_ADDRESS", "127.0.0.1")  # a developer's bot is not for the network
    print(f"simulator: http://127.0.0.1:{env['PORT']}/simulator   (open it in a browser)",
          flush=True)
    instance = Path(settings.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    redis_proc = None
    if not settings.redis_url:
        env["REDIS_URL"], redis_proc = start_embedded(instance / "redis")
        _publish(instance, env["REDIS_URL"])  # so `flask --app bot ...` in another terminal finds it
        print(f"embedded Redis: {env['REDIS_URL']}", flush=True)
    bin_dir = Path(sys.executable).parent
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    try:
        subprocess.run([str(bin_dir / "flask"), "--app", "bot", "db", "upgrade"], env=env,
                       check=True, cwd=PROJECT_ROOT)
        _banner(settings, env["PORT"])
        honcho = shutil.which("honcho", path=env["PATH"]) or "honcho"
        # Each process runs under bot.supervise, so one that dies is restarted instead of
        # honcho stopping everything.
        procfile = wrapped_procfile(PROCESSES, instance / "Procfile.supervised")
        proc = subprocess.Popen([honcho, "start", "-f", str(procfile), "-d", str(PROJECT_ROOT),
                                 *PROCESSES], env=env, cwd=PROJECT_ROOT)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            return proc.wait()
    finally:
        if redis_proc is not None:
            (instance / REDIS_URL_FILE).unlink(missing_ok=True)
            redis_proc.terminate()
            redis_proc.wait(timeout=10)


def _publish(instance: Path, url: str) -> None:
    """Write the embedded Redis URL where Settings.from_env looks (atomically)."""
    tmp = instance / f".{REDIS_URL_FILE}.tmp"
    tmp.write_text(url + "\n")
    tmp.replace(instance / REDIS_URL_FILE)


def _interrupt(_signum, _frame) -> None:
    """SIGTERM stops everything the way Ctrl-C does (and the embedded Redis with it)."""
    raise KeyboardInterrupt


def _banner(settings: Settings, port: str) -> None:
    """Tell a newcomer where the bot listens and how to talk to it."""
    backend = settings.backend
    print(f"""
integration-bot is starting
  simulator: http://127.0.0.1:{port}/simulator   (a phone, a timeline and a clock)
  webhook:  http://127.0.0.1:{port}/twilio/sms   (signed requests only: see README)
  health:   curl http://127.0.0.1:{port}/healthz
  texts:    SMS backend = {backend}{' (outgoing texts are printed below)' if backend == 'console' else ''}
  talk:     .venv/bin/flask --app bot chat +15551234567     (in another terminal)
  enroll:   .venv/bin/flask --app bot enroll +15551234567 --tz America/New_York
""", flush=True)


if __name__ == "__main__":
    sys.exit(main())
