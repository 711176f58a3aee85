"""Load: the bot under gunicorn at a steady 50 texts/s and at saturation, vs a bare route.

Both servers run as the Procfile's `web` does (gunicorn, gunicorn.conf.py: gthread,
WEB_CONCURRENCY workers x WEB_THREADS threads), one after the other on the same
machine, fed the same kind of signed requests over keep-alive HTTP connections:

- the bare route (baseline): a Flask route that checks the signature with the SDK's
  RequestValidator and answers an empty MessagingResponse;
- the bot (`bot:create_app()`): enrolled participants working through the webhook
  bench's conversation (DONE, five journal answers, JOURNAL), each participant's texts
  in order, spread over enough participants that none trips the flood guard.

Steady load is open-loop: a request is due every 1/rate s whatever the server does, and
its latency counts from when it was due (a slow server is not let off by the client
waiting for it). Saturation is closed-loop: `--clients` threads each send their next
text as soon as the previous answer arrived, for `--seconds`; throughput = answers/s.
The load generator runs on the same cores as the server, the same for both servers.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bench
from bench import webhook_turn

ROOT = Path(__file__).resolve().parent.parent

RATE = 50.0
"""Texts per second of the steady load (the issue's figure)."""

SECONDS = 20.0
"""Length of each measured phase."""

WARM_UP_SECONDS = 3.0
"""Steady load before measuring (imports, pools, caches of each gunicorn worker)."""

CLIENTS = 16
"""Closed-loop clients at saturation (= 2 workers x 8 threads: every thread busy)."""

PARTICIPANTS = 300
"""Enrolled participants: at saturation each texts well under the flood guard's 30/min."""


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A gunicorn process group serving one app on a free port (stopped on exit)."""

    def __init__(self, app: str, env: dict[str, str], log_path: Path, root: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/twilio/sms"
        args = [sys.executable, "-m", "gunicorn", "-c", str(root / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{self.port}", "--access-logfile", "/dev/null", app]
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(args, env={**env, "PYTHONPATH": str(root)}, cwd=root,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start (see {self.log.name})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start in time")

    def __exit__(self, *exc_info) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


def signed_body(url: str, number: str, text: str) -> tuple[bytes, dict[str, str]]:
    """A Twilio inbound-text request for url: form body and headers."""
    from twilio.request_validator import RequestValidator

    params, _ = webhook_turn.signed(number, text)
    signature = RequestValidator(bench.AUTH_TOKEN).compute_signature(url, params)
    headers = {"X-Twilio-Signature": signature,
               "Content-Type": "application/x-www-form-urlencoded"}
    return urllib.parse.urlencode(params).encode(), headers


class Texts:
    """Each participant's conversation, in order; hands out (number, text) pairs."""

    def __init__(self, numbers: list[str]):
        self.numbers = numbers
        self.position = dict.fromkeys(numbers, 0)

    def next_for(self, number: str) -> str:
        """The participant's next text."""
        n = self.position[number]
        self.position[number] = n + 1
        return webhook_turn.CONVERSATION[n % len(webhook_turn.CONVERSATION)]


class Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, port: int):
        self.port = port
        self.local = threading.local()

    def post(self, body: bytes, headers: dict[str, str]) -> bytes:
        """POST to /twilio/sms; the answer's body (raises on a non-200 answer)."""
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                timeout=30)
        try:
            conn.request("POST", "/twilio/sms", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        if response.status != 200:
            raise RuntimeError(f"answered {response.status}")
        return data


def steady(server: Server, texts: Texts, rate: float, seconds: float) -> dict:
    """Open loop at `rate` requests/s; latency from each request's due time."""
    count = int(rate * seconds)
    numbers = texts.numbers
    # Signed up front: the client's own work is not part of the schedule.
    requests = []
    for i in range(count):
        number = numbers[i % len(numbers)]
        requests.append(signed_body(server.url, number, texts.next_for(number)))
    client = Client(server.port)
    latencies: list[float] = []
    errors = []
    replied = []
    lock = threading.Lock()

    def send(due: float, body: bytes, headers: dict) -> None:
        try:
            data = client.post(body, headers)
            elapsed = time.perf_counter() - due
            with lock:
                latencies.append(elapsed)
                replied.append(b"<Message>" in data)
        except Exception as error:  # counted, reported; the run goes on
            with lock:
                errors.append(repr(error))

    start = time.perf_counter() + 0.05
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i, (body, headers) in enumerate(requests):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, due, body, headers)
    return {"sent": count, "answered": len(latencies), "errors": len(errors),
            "with_reply": sum(replied), "p50_ms": bench.percentile(latencies, 0.50) * 1000,
            "p99_ms": bench.percentile(latencies, 0.99) * 1000}


def saturate(server: Server, texts: Texts, clients: int, seconds: float) -> dict:
    """Closed loop: `clients` threads, each its own participants in turn, for `seconds`."""
    client = Client(server.port)
    done = [0] * clients
    errors = [0] * clients
    replied = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    mine = [texts.numbers[k::clients] for k in range(clients)]
    stop_at = time.perf_counter() + seconds

    def run(k: int) -> None:
        i = 0
        while time.perf_counter() < stop_at:
            number = mine[k][i % len(mine[k])]
            i += 1
            body, headers = signed_body(server.url, number, texts.next_for(number))
            started = time.perf_counter()
            try:
                data = client.post(body, headers)
            except Exception:
                errors[k] += 1
                continue
            latencies[k].append(time.perf_counter() - started)
            done[k] += 1
            replied[k] += b"<Message>" in data

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for per in latencies for x in per]
    return {"answered": sum(done), "errors": sum(errors), "with_reply": sum(replied),
            "seconds": round(elapsed, 2),
            "per_second": sum(done) / elapsed,
            "p50_ms": bench.percentile(flat, 0.50) * 1000,
            "p99_ms": bench.percentile(flat, 0.99) * 1000}


def enroll_all(settings, db, numbers: list[str]) -> None:
    """Invite and set up every participant in this process (no texts leave: fake sender)."""
    from bot import create_app
    from bot.services import build_services
    from bot.sms import FakeSender

    services = build_services(settings, sender=FakeSender(), db=db)
    app = create_app(services=services)
    app.config["TESTING"] = True
    client = app.test_client()
    for number in numbers:
        webhook_turn.enroll(client, number)


def measure(server: Server, texts: Texts, rate: float, seconds: float, clients: int,
            warm_up: float) -> dict:
    """Warm up, then the steady phase, then saturation."""
    steady(server, texts, rate, warm_up)
    return {"steady": steady(server, texts, rate, seconds),
            "saturation": saturate(server, texts, clients, seconds), "pid": server.proc.pid}


def run(*, rate: float = RATE, seconds: float = SECONDS, clients: int = CLIENTS,
        participants: int = PARTICIPANTS, database_url: str | None = None,
        fresh_schema: bool = True, warm_up: float = WARM_UP_SECONDS,
        app_root: Path = ROOT) -> dict:
    """Both servers, one after the other; every measured number. app_root: the checkout
    both servers run from (another one, e.g. main's, for a before/after)."""
    from bot.storage import Database

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        url = database_url or bench.database_url(tmp)
        db = bench.fresh_database(url) if fresh_schema else Database(url)
        # The console backend: the web process never calls Twilio (replies go in TwiML).
        settings = bench.bench_settings(tmp, url, sms_backend="console")
        numbers = [f"+1555500{n:04d}" for n in range(participants)]
        try:
            enroll_all(settings, db, numbers)
        finally:
            db.dispose()
        env = {**os.environ, **settings.to_env(), "LOG_LEVEL": "WARNING"}
        env.pop("REDIS_URL", None)  # like the webhook bench: no queue; replies in TwiML
        with Server("bench.webhook_turn:baseline_app()", env, Path(tmp) / "bare.log",
                    app_root) as bare:
            base = measure(bare, Texts(numbers), rate, seconds, clients, warm_up)
        with Server("bot:create_app()", env, Path(tmp) / "bot.log", app_root) as bot:
            full = measure(bot, Texts(numbers), rate, seconds, clients, warm_up)
    workers = os.environ.get("WEB_CONCURRENCY", "2")
    threads = os.environ.get("WEB_THREADS", "8")
    return {
        "benchmark": "load", "database": bench.database_kind(url), "rate": rate,
        "seconds": seconds, "clients": clients, "participants": participants,
        "gunicorn": f"{workers} workers x {threads} threads", "app_root": str(app_root),
        "baseline": base, "bot": full,
        "p99_ratio": round(bench.ratio(full["steady"]["p99_ms"], base["steady"]["p99_ms"]), 2),
        "p50_ratio": round(bench.ratio(full["steady"]["p50_ms"], base["steady"]["p50_ms"]), 2),
        "throughput_ratio": round(bench.ratio(full["saturation"]["per_second"],
                                              base["saturation"]["per_second"]), 3),
    }


def report(r: dict) -> None:
    """The human-readable table."""
    print(f"load: gunicorn {r['gunicorn']}, {r['database']}, {r['participants']} participants, "
          f"app from {r['app_root']}")
    b, f = r["baseline"], r["bot"]
    rows = [
        (f"{r['rate']:.0f}/s p50 (ms)", f"{b['steady']['p50_ms']:.2f}",
         f"{f['steady']['p50_ms']:.2f}", f"{r['p50_ratio']:.2f}x"),
        (f"{r['rate']:.0f}/s p99 (ms)", f"{b['steady']['p99_ms']:.2f}",
         f"{f['steady']['p99_ms']:.2f}", f"{r['p99_ratio']:.2f}x"),
        (f"saturation, {r['clients']} clients (answers/s)",
         f"{b['saturation']['per_second']:.0f}", f"{f['saturation']['per_second']:.0f}",
         f"{r['throughput_ratio']:.3f}"),
        ("saturation p50 / p99 (ms)",
         f"{b['saturation']['p50_ms']:.1f} / {b['saturation']['p99_ms']:.1f}",
         f"{f['saturation']['p50_ms']:.1f} / {f['saturation']['p99_ms']:.1f}", "-"),
        ("answers with a reply (steady + saturation)",
         str(b["steady"]["with_reply"] + b["saturation"]["with_reply"]),
         str(f["steady"]["with_reply"] + f["saturation"]["with_reply"]), "-"),
        ("errors (steady + saturation)",
         str(b["steady"]["errors"] + b["saturation"]["errors"]),
         str(f["steady"]["errors"] + f["saturation"]["errors"]), "-"),
    ]
    bench.print_table(rows, header=("", "bare route", "bot", "ratio"))
    print("targets: 50/s p99 <= 3x the bare route; saturation >= 1/4 of the bare route")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench load`: exit 1 when a request failed."""
    parser = argparse.ArgumentParser(prog="python -m bench load",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--participants", type=int, default=PARTICIPANTS)
    parser.add_argument("--app-root", type=Path, default=ROOT,
                        help="run both servers from this checkout (a before/after)")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    result = run(rate=args.rate, seconds=args.seconds, clients=args.clients,
                 participants=args.participants, app_root=args.app_root.resolve())
    errors = sum(result[side][phase]["errors"] for side in ("baseline", "bot")
                 for phase in ("steady", "saturation"))
    result["ok"] = errors == 0
    if args.json:
        bench.print_json(result)
    else:
        report(result)
    return 0 if result["ok"] else 1
