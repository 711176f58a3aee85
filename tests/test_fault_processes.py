"""Faults against real processes: a worker riding out Redis going away mid-job, `make run`
restarting a killed child, gunicorn with slow clients and oversized bodies. Each bounded
to seconds; every process started here is stopped here."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from bot import queue
from bot.clock import FileClock
from bot.fake_twilio import FakeTwilio
from bot.redis_conn import start_embedded
from bot.services import build_services
from tests.conftest import AUTH_TOKEN, START, make_settings
from tests.test_rq_delivery import add_participants, statuses

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def wait_until(predicate, timeout: float, what: str) -> None:
    """Poll predicate until it holds; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, group: bool = False) -> None:
    """SIGTERM (its group when it leads one), then SIGKILL if it lingers."""
    if proc.poll() is not None:
        return
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- worker and Redis (4, 15)


@pytest.fixture
def redis_dir(tmp_path):
    """Where this test's own redis-server keeps its socket (stopped and started by the test)."""
    return tmp_path / "redis"


def test_the_worker_rides_out_redis_going_away_mid_job_on_its_own_queue(
        tmp_path, db, redis_dir):
    url, redis_proc = start_embedded(redis_dir)
    with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
        clock = FileClock(tmp_path / "now.txt")
        clock.set(START)
        settings = make_settings(tmp_path, db.url, redis_url=url, queue_name="clinic-b",
                                 twilio_api_base_url=fake.base_url, sms_max_per_second=100.0,
                                 care_team_numbers=(), clock_file=str(clock.path))
        services = build_services(settings, db=db, clock=clock)
        env = {**os.environ, **settings.to_env(), "LOG_LEVEL": "WARNING"}
        worker = subprocess.Popen([sys.executable, "-m", "bot.worker"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            first, second = add_participants(services, 2)
            fake.latency = 1.5  # the job is inside the API call when Redis goes away
            queue.enqueue_scheduled(services, [first])
            wait_until(lambda: fake.attempts() >= 1, 20, "the first send")
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
            wait_until(lambda: statuses(services)[first] == "sent", 20, "the first row sent")
            time.sleep(1.0)  # the worker meets the dead Redis and must not exit
            assert worker.poll() is None, "the worker exited when Redis went away"
            fake.latency = 0.0
            url, redis_proc = start_embedded(redis_dir)  # Redis is back, empty
            services.__dict__.pop("redis", None)
            services.__dict__.pop("queue", None)
            queue.enqueue_scheduled(services, [second])
            wait_until(lambda: statuses(services)[second] == "sent", 30, "the second row sent")
            assert worker.poll() is None
            assert sorted(m["body"] for m in fake.messages) == ["walk reminder 0",
                                                               "walk reminder 1"]
        finally:
            stop(worker)
            stop(redis_proc)


# ---------------------------------------------------------------- make run (4)


def supervised_children(root: int, name: str) -> set[int]:
    """Pids of the processes `bot.supervise NAME` runs, anywhere below root (found by their
    parent: RQ renames its own process title)."""
    parents, commands = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            commands[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    below, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - below
        below |= frontier
    supervisors = {pid for pid in below
                   if f"bot.supervise {name}".encode() in commands.get(pid, b"")
                   and b"/bin/sh" not in commands[pid]}
    return {pid for pid in below if parents.get(pid) in supervisors}


def healthz(port: int) -> dict | None:
    """The /healthz answer, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return None


def test_make_run_restarts_a_worker_killed_with_sigkill(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "REDIS_URL", "DATABASE_URL", "SMS_BACKEND"))}
    env.update(INSTANCE_PATH=str(tmp_path / "instance"), PORT=str(port), WEB_CONCURRENCY="1")
    log = open(tmp_path / "make-run.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "bot.dev"], env=env, start_new_session=True,
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: (healthz(port) or {}).get("status") == "ok", 90, "make run")
        try:
            wait_until(lambda: supervised_children(proc.pid, "worker"), 60, "the worker")
        except AssertionError:
            print((tmp_path / "make-run.log").read_text()[-3000:])
            raise
        (old,) = supervised_children(proc.pid, "worker")
        os.kill(old, signal.SIGKILL)
        wait_until(lambda: supervised_children(proc.pid, "worker") - {old}, 30,
                   "a new worker")
        assert proc.poll() is None, "make run stopped when its worker died"
        assert (healthz(port) or {}).get("status") == "ok"
    finally:
        stop(proc, group=True)
        log.close()


# ---------------------------------------------------------------- gunicorn (9)


@pytest.fixture
def gunicorn_server(tmp_path, db, redis_url):
    """The Procfile's web process (gunicorn with gunicorn.conf.py) over the test database."""
    port = free_port()
    settings = make_settings(tmp_path, db.url, redis_url=redis_url,
                             public_base_url=f"http://127.0.0.1:{port}")
    env = {**os.environ, **settings.to_env(), "PORT": str(port), "WEB_CONCURRENCY": "2",
           "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "bot:create_app()"], env=env,
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: healthz(port) is not None, 60, "gunicorn")
        yield port
    finally:
        stop(proc)


def signed_text(port: int, body: str, number: str = "+15551234567") -> tuple[int, bytes]:
    """POST a signed inbound text to the real server."""
    url = f"http://127.0.0.1:{port}/twilio/sms"
    params = {"MessageSid": "SM" + os.urandom(16).hex(), "From": number, "To": "+15005550006",
              "Body": body}
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, params)
    data = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(url, data=data, headers={"X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.status, response.read()


def slow_client(port: int) -> socket.socket:
    """A client that sends headers (a signature to check, so the body must be read) and the
    first bytes of a body, then nothing."""
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"POST /twilio/sms HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/x-www-form-urlencoded\r\nX-Twilio-Signature: c2xvdw==\r\n"
                 b"Content-Length: 5000\r\n\r\nBody=")
    return conn


def test_slow_clients_do_not_keep_a_real_text_from_its_answer(gunicorn_server):
    port = gunicorn_server
    slow = [slow_client(port) for _ in range(6)]
    try:
        status, body = signed_text(port, "HELP")
        assert status == 200 and b"<Message>" in body
        assert all(s.fileno() != -1 for s in slow)
    finally:
        for s in slow:
            s.close()


def test_a_huge_unsigned_body_is_refused_with_413_without_being_read(gunicorn_server):
    port = gunicorn_server
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        conn.sendall(b"POST /twilio/sms HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: 104857600\r\n\r\n"
                     + b"x" * 1024)
        answer = conn.recv(200)
    finally:
        conn.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer


# ---------------------------------------------------------------- the database goes away (1)


class RefusingProxy:
    """A TCP forwarder to PostgreSQL that the test can make refuse connections (ours only:
    the database server itself keeps running for everyone else)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target, self.port = target, free_port()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        """Listen (again) on the same port and forward every connection."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def refuse(self) -> None:
        """Drop every connection and stop listening: new ones get 'connection refused'."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


if os.environ.get("TEST_DATABASE_URL"):
    # Only a server database refuses connections: this runs whenever PostgreSQL is
    # configured (CI). On SQLite the same fault is driven in process
    # (tests/test_delivery_invariants.py, FlakyDatabase).

    @pytest.mark.parametrize("migrated_db", ["postgresql"], indirect=True)
    def test_postgres_refusing_connections_while_sending_loses_and_doubles_nothing(
            tmp_path, migrated_db, redis_dir):
        from sqlalchemy.engine import make_url

        from bot import scheduling
        from bot.delivery import LEASE
        from bot.storage import Database

        _empty(migrated_db)
        real = make_url(migrated_db.url)
        proxy = RefusingProxy((real.host or "127.0.0.1", real.port or 5432))
        proxy.open()
        proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False)
        url, redis_proc = start_embedded(redis_dir)
        with FakeTwilio(auth_token=AUTH_TOKEN) as fake:
            clock = FileClock(tmp_path / "now.txt")
            clock.set(START)
            settings = make_settings(tmp_path, proxied, redis_url=url,
                                     twilio_api_base_url=fake.base_url,
                                     sms_max_per_second=100.0, care_team_numbers=(),
                                     clock_file=str(clock.path))
            direct = Database(migrated_db.url)
            services = build_services(settings, db=direct, clock=clock)
            env = {**os.environ, **settings.to_env(), "LOG_LEVEL": "WARNING"}
            worker = subprocess.Popen([sys.executable, "-m", "bot.worker"], env=env, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                ids = add_participants(services, 5)
                fake.latency = 1.0  # every send is in flight when the database goes
                queue.enqueue_scheduled(services, ids)
                wait_until(lambda: fake.attempts() >= 1, 30, "the first send")
                proxy.refuse()
                time.sleep(3.0)
                proxy.open()
                fake.latency = 0.0
                # The worker records what Twilio accepted once the database is back; a row
                # whose re-check met the outage stays `sending` until its lease runs out.
                wait_until(lambda: list(statuses(services).values()).count("sent")
                           >= fake.attempts(), 30, "accepted texts to be recorded")
                # Whatever the outage left unsettled, later clock passes settle it.
                for _ in range(3):
                    time.sleep(1.0)
                    clock.set(clock.now() + LEASE + timedelta(seconds=1))
                    scheduling.dispatch_due(services)
                wait_until(lambda: set(statuses(services).values()) == {"sent"}, 30,
                           "every row sent")
                bodies = sorted(m["body"] for m in fake.messages)
                assert bodies == sorted(f"walk reminder {n}" for n in range(5)), bodies
            finally:
                stop(worker)
                stop(redis_proc)
                proxy.refuse()
                direct.dispose()


def _empty(database) -> None:
    """Empty every table (what the `db` fixture does)."""
    from sqlalchemy import text

    from bot.storage.models import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))

