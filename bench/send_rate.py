"""Send rate: scheduled nudges through the database, RQ workers and the twilio SDK.

The issue's target: with the fake Twilio answering in 150 ms and
SMS_MAX_PER_SECOND=100, one 2-core worker host sustains at least 95 messages
a second and never sends more than 100 in any one second.

Baseline (same run): the same TwilioSender and the same Redis rate limiter
driven by a 32-thread pool in this process, with no database and no RQ: the
ceiling this machine reaches today. Pipeline: N due rows for N active
participants, `scheduling.dispatch_due` every half second here, and real
`rq worker` processes (one per core) sending them. Both are measured where
Twilio would see them: the fake's arrival stamps, in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta, timezone
from pathlib import Path

import bench

TARGET_PER_SECOND = 95.0
"""The sustained rate the pipeline must reach (messages a second)."""

WARM_UP = 1.0
"""Seconds after the first message left out of the sustained rate (imports, connections)."""

DISPATCH_EVERY = 0.5
"""Seconds between scheduler passes, as the clock process runs them."""

BASELINE_THREADS = 32
"""Threads of the baseline sender (delivery.SEND_THREADS today)."""

QUEUE_NAME = "integration-bot-bench"
"""A queue of our own, so a worker of another run on the same Redis never takes our jobs."""


def sustained_rate(stamps: list[float], warm_up: float = WARM_UP) -> float:
    """Messages a second between the first and last arrival after the warm-up."""
    ordered = sorted(stamps)
    if not ordered:
        return 0.0
    steady = [t for t in ordered if t >= ordered[0] + warm_up]
    if len(steady) < 2 or steady[-1] == steady[0]:
        return 0.0
    return (len(steady) - 1) / (steady[-1] - steady[0])


def busiest_second(stamps: list[float]) -> tuple[int, float]:
    """Most arrivals in any one-second window, and where it starts (seconds after the first)."""
    ordered = sorted(stamps)
    best, best_at, start = 0, 0.0, 0
    for end, stamp in enumerate(ordered):
        while stamp - ordered[start] >= 1.0:
            start += 1
        if end - start + 1 > best:
            best, best_at = end - start + 1, ordered[start] - ordered[0]
    return best, best_at


def duplicates(bodies: list[str]) -> int:
    """How many texts arrived more than once (extra copies counted)."""
    return len(bodies) - len(set(bodies))


class FakeProcess:
    """FakeTwilio in a child process of its own, questioned over a line-based pipe.

    In this process its handler threads would wait for the GIL behind the
    baseline's 32 sender threads and the scheduler loop, and stamp arrivals late:
    bunching that is the benchmark's, not the bot's.
    """

    def __init__(self, *, latency: float, auth_token: str = bench.AUTH_TOKEN) -> None:
        self.latency, self.auth_token = latency, auth_token
        self.base_url = ""
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> FakeProcess:
        root = str(Path(bench.__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        self._proc = subprocess.Popen(
            [sys.executable, "-c", "from bench.send_rate import serve_fake; serve_fake()",
             str(self.latency), self.auth_token],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        self.base_url = json.loads(self._proc.stdout.readline())
        return self

    def __exit__(self, *exc_info: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.close()  # end of input: the child stops its server and exits
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()

    def _call(self, command: str):
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()
        return json.loads(self._proc.stdout.readline())

    @property
    def messages(self) -> list[dict]:
        """Copies of the messages the fake accepted, oldest first."""
        return self._call("messages")

    def clear(self) -> None:
        """Forget every message."""
        self._call("clear")

    def max_per_second(self) -> int:
        """Most accepted messages within any one-second window."""
        return self._call("max_per_second")


def serve_fake() -> None:
    """The child's loop: run a FakeTwilio; answer one JSON line per command on stdin."""
    from bot.fake_twilio import FakeTwilio

    latency, auth_token = float(sys.argv[1]), sys.argv[2]
    with FakeTwilio(auth_token=auth_token, latency=latency) as fake:
        answers = {"messages": lambda: fake.messages, "clear": fake.clear,
                   "max_per_second": fake.max_per_second}
        print(json.dumps(fake.base_url), flush=True)
        for line in sys.stdin:
            print(json.dumps(answers[line.strip()]()), flush=True)


def _number(n: int, block: int) -> str:
    """A fictional 555 number, distinct per n (block keeps the two phases apart)."""
    return f"+1555{block}{n:06d}"


# ---------------------------------------------------------------- baseline


def run_baseline(services, fake, messages: int) -> dict:
    """Send straight through one TwilioSender and the shared rate limiter, no DB, no RQ."""
    from bot.ratelimit import RateLimiter
    from bot.sms import TwilioSender

    s = services.settings
    sender = TwilioSender(s.twilio_account_sid, s.twilio_auth_token,
                          from_number=s.twilio_from_number, api_base_url=fake.base_url)
    limiter = RateLimiter(services.redis, s.sms_max_per_second)

    def send(n: int) -> None:
        limiter.acquire()
        sender.send(_number(n, 3), f"baseline reminder {n}")

    fake.clear()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=BASELINE_THREADS) as pool:
        list(pool.map(send, range(messages)))
    result = measure(fake)
    result["elapsed"] = time.monotonic() - started
    fake.clear()
    return result


def measure(fake) -> dict:
    """What the fake Twilio saw: sustained rate, busiest second (and when), duplicates."""
    from bot.fake_twilio import max_in_window

    received = fake.messages
    stamps = sorted(m["received_at"] for m in received)
    busiest, busiest_at = busiest_second(stamps)
    steady = [t for t in stamps if t >= stamps[0] + WARM_UP] if stamps else []
    return {
        "rate": sustained_rate(stamps),
        "max_per_second": fake.max_per_second(),
        "busiest_at": busiest_at,
        "max_after_warm_up": max_in_window(steady),
        "duplicates": duplicates([m["body"] for m in received]),
        "sent": len(received),
    }


# ---------------------------------------------------------------- pipeline


def midday_zone(now) -> str:
    """A fixed-offset zone where it is around noon at `now` (UTC).

    The workers run on the real clock, and nudges only go out between 08:00 and 20:00 in
    the participant's zone: a fixed zone such as New York would hold every nudge until
    morning (and let it expire) whenever the bench runs in the American evening.
    """
    offset = (12 - now.astimezone(timezone.utc).hour + 12) % 24 - 12  # -12 .. +11 hours
    # IANA's Etc zones have the sign inverted: Etc/GMT-5 is five hours ahead of UTC.
    return "Etc/GMT" + ("" if offset == 0 else f"{-offset:+d}")


def add_due_nudges(services, count: int) -> list[int]:
    """Active participants with one due nudge each; returns the scheduled row ids."""
    from bot import participants as people
    from bot.phones import parse_address
    from bot.storage.models import ScheduledMessage

    now = services.clock.now()
    rows = []
    with services.db.session() as db:
        for n in range(count):
            p = people.create(db, parse_address(_number(n, 2)), services.phone_hash_key, now,
                              timezone=midday_zone(now))
            p.status = "active"
            rows.append(ScheduledMessage(
                participant_id=p.id, plan="post_session", kind="exercise", scope=f"bench{n}",
                message_key="nudge.exercise.day1", body=f"walk reminder {n}", priority=1,
                due_at=now - timedelta(minutes=1), expires_at=now + timedelta(hours=6),
                status="pending", created_at=now, updated_at=now))
        db.add_all(rows)
        db.flush()
        return [row.id for row in rows]


def worker_env(settings) -> dict[str, str]:
    """The environment a worker needs to reach the same database, Redis and fake Twilio."""
    return {**os.environ, **settings.to_env(), "LOG_LEVEL": "WARNING"}


def start_worker(settings, log_path: Path) -> subprocess.Popen:
    """A real `rq worker` process, as the Procfile runs it."""
    args = [sys.executable, "-m", "rq.cli", "worker", "--worker-class", "rq.worker.SimpleWorker",
            "--url", settings.redis_url, settings.queue_name]
    with open(log_path, "wb") as log:
        return subprocess.Popen(args, env=worker_env(settings), stdout=log,
                                stderr=subprocess.STDOUT)


def stop_workers(workers: list[subprocess.Popen]) -> None:
    """Warm shutdown (SIGTERM lets the current job finish), then SIGKILL if one lingers."""
    for worker in workers:
        if worker.poll() is None:
            worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


def _wait_registered(services, workers: list[subprocess.Popen], timeout: float = 60) -> None:
    """Block until every worker listens on the queue (imports are not part of the rate)."""
    from rq import Worker

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("an rq worker exited at start")
        if len(Worker.all(queue=services.queue)) >= len(workers):
            return
        time.sleep(0.1)
    raise RuntimeError("rq workers did not start in time")


def status_counts(services) -> dict[str, int]:
    """Scheduled rows per status."""
    from sqlalchemy import func, select

    from bot.storage.models import ScheduledMessage

    with services.db.session() as db:
        return dict(db.execute(select(ScheduledMessage.status, func.count())
                               .group_by(ScheduledMessage.status)).all())


def run_pipeline(services, fake, messages: int, workers: int, timeout: float,
                 log_dir: Path) -> dict:
    """Due rows -> dispatch_due -> RQ -> real workers -> fake Twilio; measured at the fake."""
    from bot import scheduling

    add_due_nudges(services, messages)
    fake.clear()
    procs = [start_worker(services.settings, log_dir / f"worker-{n}.log")
             for n in range(workers)]
    passes = handed_over = 0
    try:
        _wait_registered(services, procs)
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            handed_over += scheduling.dispatch_due(services)
            passes += 1
            if status_counts(services).get("sent", 0) >= messages:
                break
            if any(w.poll() is not None for w in procs):
                raise RuntimeError(f"an rq worker died; see {log_dir}")
            time.sleep(DISPATCH_EVERY)
        elapsed = time.monotonic() - started
    finally:
        stop_workers(procs)
        services.queue.empty()
    result = measure(fake)
    counts = status_counts(services)
    result.update(rows_sent=counts.get("sent", 0), rows_by_status=counts,
                  dispatch_passes=passes, handed_over=handed_over, elapsed=elapsed,
                  worker_pids=[w.pid for w in procs])
    return result


# ---------------------------------------------------------------- the benchmark


def run(messages: int = 3000, *, latency: float = 0.15, rate: float = 100.0, workers: int = 2,
        baseline_messages: int | None = None, timeout: float | None = None,
        database_url: str | None = None, redis_url: str | None = None,
        fresh_schema: bool = True) -> dict:
    """Run baseline then pipeline in one process; returns every measured number.

    baseline_messages defaults to messages; 0 skips the baseline.
    """
    from bot.services import build_services
    from bot.storage import Database

    timeout = timeout if timeout is not None else 60 + 3 * messages / rate
    with tempfile.TemporaryDirectory(prefix="bench-send-rate-") as tmp, \
            bench.redis_server(tmp, redis_url) as redis, \
            FakeProcess(latency=latency) as fake:
        url = database_url or bench.database_url(tmp)
        db = bench.fresh_database(url) if fresh_schema else Database(url)
        # No clock file: workers and scheduler read the system clock, as in production.
        settings = bench.bench_settings(tmp, url, redis_url=redis,
                                        twilio_api_base_url=fake.base_url,
                                        sms_max_per_second=rate, queue_name=QUEUE_NAME)
        services = build_services(settings, db=db)
        try:
            count = messages if baseline_messages is None else baseline_messages
            baseline = run_baseline(services, fake, count) if count else measure(fake)
            pipeline = run_pipeline(services, fake, messages, workers, timeout, Path(tmp))
        finally:
            services.redis.close()
            db.dispose()
    return {
        "benchmark": "send-rate", "messages": messages, "database": bench.database_kind(url),
        "latency": latency, "rate_limit": rate, "workers": workers, "cpus": os.cpu_count(),
        "baseline_rate": round(baseline["rate"], 2),
        "baseline_max_per_second": baseline["max_per_second"],
        "baseline_busiest_at": round(baseline["busiest_at"], 2),
        "baseline_max_after_warm_up": baseline["max_after_warm_up"],
        "baseline_duplicates": baseline["duplicates"],
        "pipeline_rate": round(pipeline["rate"], 2),
        "pipeline_max_per_second": pipeline["max_per_second"],
        "pipeline_busiest_at": round(pipeline["busiest_at"], 2),
        "pipeline_max_after_warm_up": pipeline["max_after_warm_up"],
        "ratio": round(bench.ratio(pipeline["rate"], baseline["rate"]), 3),
        "duplicates": pipeline["duplicates"],
        "texts_received": pipeline["sent"],
        "rows_sent": pipeline["rows_sent"],
        "rows_by_status": pipeline["rows_by_status"],
        "handed_over": pipeline["handed_over"],
        "dispatch_passes": pipeline["dispatch_passes"],
        "pipeline_seconds": round(pipeline["elapsed"], 2),
        "worker_pids": pipeline["worker_pids"],
    }


def failures(result: dict, target: float = TARGET_PER_SECOND) -> list[str]:
    """What the result misses of the issue's target (empty when it is met)."""
    problems = []
    if result["rows_sent"] != result["messages"] or result["texts_received"] != result["messages"]:
        problems.append(f"{result['rows_sent']} of {result['messages']} rows sent, "
                        f"{result['texts_received']} texts received")
    if result["duplicates"]:
        problems.append(f"{result['duplicates']} duplicate texts")
    if result["pipeline_max_per_second"] > result["rate_limit"]:
        problems.append(f"{result['pipeline_max_per_second']} texts in one second "
                        f"(limit {result['rate_limit']:g})")
    if result["pipeline_rate"] < target:
        problems.append(f"sustained {result['pipeline_rate']:.1f}/s, below {target:g}/s")
    return problems


def report(result: dict) -> None:
    """The human-readable table."""
    r = result
    print(f"send-rate: {r['messages']} messages, {r['database']}, {r['workers']} workers, "
          f"{r['cpus']} cpus, fake latency {r['latency'] * 1000:.0f} ms, "
          f"limit {r['rate_limit']:g}/s")
    bench.print_table([
        ("sustained rate (msg/s)", f"{r['baseline_rate']:.1f}", f"{r['pipeline_rate']:.1f}"),
        ("ratio to baseline", "1.000", f"{r['ratio']:.3f}"),
        ("max in any second", str(r["baseline_max_per_second"]),
         str(r["pipeline_max_per_second"])),
        ("  busiest second starts at (s)", f"{r['baseline_busiest_at']:.1f}",
         f"{r['pipeline_busiest_at']:.1f}"),
        ("  max in any second after warm-up", str(r["baseline_max_after_warm_up"]),
         str(r["pipeline_max_after_warm_up"])),
        ("duplicates", str(r["baseline_duplicates"]), str(r["duplicates"])),
        ("rows sent", "-", f"{r['rows_sent']}/{r['messages']}"),
        ("rows handed to RQ (re-hand-overs incl.)", "-", str(r["handed_over"])),
    ], header=("", "baseline", "pipeline"))


def main(argv: list[str] | None = None) -> int:
    """`python -m bench send-rate`: exit 1 when the target is missed."""
    parser = argparse.ArgumentParser(prog="python -m bench send-rate",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--latency", type=float, default=0.15, help="fake Twilio answer time (s)")
    parser.add_argument("--rate", type=float, default=100.0, help="SMS_MAX_PER_SECOND")
    parser.add_argument("--workers", type=int, default=2, help="rq worker processes")
    parser.add_argument("--target", type=float, default=TARGET_PER_SECOND,
                        help="sustained msg/s the pipeline must reach")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    result = run(args.messages, latency=args.latency, rate=args.rate, workers=args.workers)
    problems = failures(result, args.target)
    result["ok"] = not problems
    if args.json:
        bench.print_json(result)
    else:
        report(result)
        for problem in problems:
            print(f"FAIL: {problem}")
        if not problems:
            print(f"OK: at least {args.target:g}/s sustained, never above the limit, "
                  "no duplicates")
    return 1 if problems else 0
