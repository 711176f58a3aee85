"""`make run`'s runner: web, worker and clock on embedded defaults answer /healthz."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_run_answers_healthz_without_redis_or_twilio(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "REDIS_URL", "DATABASE_URL", "SMS_BACKEND"))}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(port), WEB_CONCURRENCY="1")
    proc = subprocess.Popen([sys.executable, "-m", "bot.dev"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, health = time.monotonic() + 60, None
        while time.monotonic() < deadline and health is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    health = json.loads(r.read())
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        assert health == {"status": "ok", "database": True, "redis": True,
                          "sms_backend": "console"}
        _simulator_moves_the_shared_clock(port, tmp_path / "instance" / "clock")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert "flask --app bot chat" in output
    # A newcomer sees where to open the simulator before anything else.
    assert output.splitlines()[0].startswith(f"simulator: http://127.0.0.1:{port}/simulator")
    assert not (tmp_path / "instance" / "redis" / "redis.sock").exists() or _refused(
        tmp_path / "instance" / "redis" / "redis.sock")


def _simulator_moves_the_shared_clock(port: int, clock_file) -> None:
    """The simulator answers, and its +1 day writes the clock file every process reads."""
    import http.cookiejar
    import re

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(f"http://127.0.0.1:{port}/simulator", timeout=5) as r:
        page = r.read().decode()
    assert "Phone simulator" in page
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/simulator/clock", data=json.dumps({"step": "day"}).encode(),
        headers={"Content-Type": "application/json", "X-CSRFToken": token}, method="POST")
    with opener.open(request, timeout=30) as r:
        assert json.loads(r.read())["ok"]
    assert 86000 < float(clock_file.read_text()) < 86500


def _refused(path) -> bool:
    """True when nothing answers on a unix socket any more."""
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return True
    return False
