"""The clock at scale: a dispatch pass and a DONE turn with 1M timers and 1M texts stored.

A dispatch pass (bot.scheduling.dispatch_due) hands `--due` due timers to RQ
while `--timers` other pending timers wait and `--messages` texts are stored.
Timed against baselines from the same run: the same pass when only the due rows
exist (small), and the pre-issue-12 pass (bench/legacy_clock.py) on the same data,
first without the clock's partial indexes (migration 0008), then with them. A DONE
turn through the signed webhook is timed on the small and on the large database.
Rows are seeded in the database itself (INSERT ... SELECT over generate_series on
PostgreSQL, a recursive CTE on SQLite), so seeding 2M rows takes seconds, not minutes.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

import bench
from bench import legacy_clock, webhook_turn
from bench.roundtrips import counting_database, counting_redis

START = webhook_turn.START
"""The first pass's 'now' (the due rows are due a minute before)."""

SEED_PARTICIPANTS = 10_000
"""Synthetic participants the seeded timers and texts belong to."""

CLOCK_INDEXES = ("ix_messages_inbound_waiting", "ix_messages_outbound_queued",
                 "ix_scheduled_pending_due")
"""The partial indexes of migration 0008 (dropped for the 'without indexes' runs)."""

WARM_UP_PASSES = 2
"""Passes of each implementation before timing (plans cached, connections warm)."""

PASS_GAP = timedelta(seconds=21)
"""Each pass's 'now' moves this far, past scheduling.REQUEUE_AFTER, so the same due
rows are handed over again by every pass (nothing needs resetting between passes)."""

TIMER_SPREAD = 60 * 86400
"""The pending timers are due over the next 60 days (from an hour after START)."""


# ---------------------------------------------------------------- seeding (SQL in the database)


def _series(kind: str) -> tuple[str, str]:
    """(prefix, FROM clause) producing rows i = 1..:n."""
    if kind == "postgresql":
        return "", "FROM generate_series(1, :n) AS s(i)"
    return ("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < :n) ",
            "FROM s")


def _at(kind: str, seconds: str) -> str:
    """SQL for START + `seconds` (an SQL integer expression), as each dialect stores it."""
    if kind == "postgresql":
        return f"(CAST(:start AS timestamptz) + ({seconds}) * interval '1 second')"
    return f"(datetime(:start, ({seconds}) || ' seconds') || '.000000')"


def _start_param(kind: str):
    """START as the seeding SQL expects it (naive UTC text on SQLite)."""
    return START if kind == "postgresql" else START.strftime("%Y-%m-%d %H:%M:%S")


def seed_participants(db, kind: str, count: int) -> int:
    """`count` active synthetic participants; returns the first id (ids are consecutive)."""
    prefix, source = _series(kind)
    with db.engine.begin() as conn:
        conn.execute(text(
            f"{prefix}INSERT INTO participants (phone_hash, phone_last4, channel, timezone, "
            "status, consented_before, created_at, updated_at) "
            f"SELECT 'seed-' || i, '0000', 'sms', 'America/New_York', 'active', false, "
            f"{_at(kind, '-86400')}, {_at(kind, '-86400')} {source}"),
            {"n": count, "start": _start_param(kind)})
        first, last = conn.execute(text(
            "SELECT min(id), max(id) FROM participants WHERE phone_hash LIKE 'seed-%'")).one()
    if last - first + 1 != count:
        raise RuntimeError("seeded participant ids are not consecutive")
    return first


def seed_timers(db, kind: str, count: int, first_pid: int, participants: int, *,
                due_seconds: str, scope: str) -> None:
    """`count` pending timers of the seeded participants, due at START + due_seconds(i)."""
    prefix, source = _series(kind)
    with db.engine.begin() as conn:
        conn.execute(text(
            f"{prefix}INSERT INTO scheduled_messages (participant_id, plan, kind, scope, "
            "message_key, priority, due_at, expires_at, status, attempts, created_at, "
            "updated_at) "
            f"SELECT :first + (i % :participants), 'post_session', 'exercise', "
            f"'{scope}' || i, 'nudge.exercise.day1', 1, {_at(kind, due_seconds)}, "
            f"{_at(kind, f'{due_seconds} + 21600')}, 'pending', 0, {_at(kind, '-86400')}, "
            f"{_at(kind, '-86400')} {source}"),
            {"n": count, "start": _start_param(kind), "first": first_pid,
             "participants": participants})


def seed_messages(db, kind: str, count: int, first_pid: int, participants: int) -> None:
    """`count` answered texts, half in (processed) and half out (delivered), over the past."""
    prefix, source = _series(kind)
    with db.engine.begin() as conn:
        conn.execute(text(
            f"{prefix}INSERT INTO messages (participant_id, direction, twilio_sid, channel, "
            "status, segments, num_media, attempts, created_at, updated_at) "
            f"SELECT :first + (i % :participants), "
            "CASE WHEN i % 2 = 0 THEN 'in' ELSE 'out' END, 'SMseed' || i, 'sms', "
            "CASE WHEN i % 2 = 0 THEN 'processed' ELSE 'delivered' END, 1, 0, 0, "
            f"{_at(kind, '-3600 - i * 10')}, {_at(kind, '-3600 - i * 10')} {source}"),
            {"n": count, "start": _start_param(kind), "first": first_pid,
             "participants": participants})


def analyze(db, kind: str) -> None:
    """Fresh planner statistics (and a visibility map on PostgreSQL), as autovacuum would."""
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if kind == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")


def clock_indexes():
    """The Index objects of migration 0008, from the models."""
    from bot.storage.models import Message, ScheduledMessage

    return [ix for table in (Message.__table__, ScheduledMessage.__table__)
            for ix in table.indexes if ix.name in CLOCK_INDEXES]


def drop_clock_indexes(db) -> None:
    """The schema as it was before migration 0008."""
    for index in clock_indexes():
        index.drop(db.engine)


def create_clock_indexes(db) -> None:
    """Migration 0008's indexes back."""
    for index in clock_indexes():
        index.create(db.engine)


# ---------------------------------------------------------------- measuring

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def backend_pids(db) -> list[int]:
    """PostgreSQL: the server processes serving this database (the bench's own pool)."""
    if db.engine.dialect.name != "postgresql":
        return []
    with db.engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")).scalars())


def server_cpu(pids: list[int]) -> float:
    """CPU seconds the given local server processes have used so far (user + system)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a backend that has gone
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / TICKS_PER_SECOND



class Passes:
    """Runs and times dispatch passes, moving 'now' by PASS_GAP each time."""

    def __init__(self, services, due: int):
        self.services, self.due, self.now = services, due, START
        self.size = math.ceil(due / self._batch())

    def _batch(self) -> int:
        from bot import scheduling

        return scheduling.batch_size(self.services.settings.sms_max_per_second)

    def one(self, implementation: str, db_trips=None, redis_trips=None) -> tuple[float, int, int]:
        """(seconds, rows handed over, jobs enqueued) for one pass; counters count only it."""
        from bot import scheduling

        dispatch = scheduling.dispatch_due if implementation == "new" else \
            legacy_clock.dispatch_due
        now, self.now = self.now, self.now + PASS_GAP
        pids = backend_pids(self.services.db)
        for counter in (db_trips, redis_trips):
            if counter is not None:
                counter.reset()
        cpu = time.process_time() + server_cpu(pids)
        started = time.perf_counter()
        handed = dispatch(self.services, now)
        elapsed = time.perf_counter() - started
        self.last_cpu = time.process_time() + server_cpu(pids) - cpu
        counts = (db_trips.total if db_trips else 0, redis_trips.total if redis_trips else 0)
        jobs = self.services.queue.count
        self.services.redis.flushdb()
        self.last_trips = counts
        return elapsed, handed, jobs

    def round_trips(self, implementation: str) -> dict:
        """Database and Redis round trips of one pass."""
        with counting_database(self.services.db.engine) as db_trips, \
                counting_redis() as redis_trips:
            self.one(implementation, db_trips, redis_trips)
            by_statement = dict(db_trips.statements)
        database, redis = self.last_trips
        return {"database": database, "redis": redis, "database_by_statement": by_statement}

    def compare(self, passes: int) -> dict:
        """Median/p95 ms, round trips and correctness of both implementations, interleaved."""
        times: dict[str, list[float]] = {"new": [], "old": []}
        cpu: dict[str, float] = {"new": 0.0, "old": 0.0}
        wrong: dict[str, int] = {"new": 0, "old": 0}
        jobs: dict[str, set] = {"new": set(), "old": set()}
        order = ("new", "old")
        for n in range(WARM_UP_PASSES + passes):
            for implementation in order if n % 2 == 0 else order[::-1]:
                elapsed, handed, enqueued = self.one(implementation)
                wrong[implementation] += handed != self.due
                jobs[implementation].add(enqueued)
                if n >= WARM_UP_PASSES:
                    times[implementation].append(elapsed)
                    cpu[implementation] += self.last_cpu
        result = {}
        for implementation in order:
            trips = self.round_trips(implementation)
            result[implementation] = {
                "median_ms": round(bench.median(times[implementation]) * 1000, 2),
                "p95_ms": round(bench.percentile(times[implementation], 0.95) * 1000, 2),
                # Mean CPU per pass, this process plus its PostgreSQL backends: what the
                # pass costs when it does not wait for a core (the machine may be busy).
                "cpu_ms": round(cpu[implementation] / max(1, passes) * 1000, 2),
                "passes_handing_wrong_count": wrong[implementation],
                "jobs_per_pass": sorted(jobs[implementation]),
                "db_round_trips": trips["database"], "redis_round_trips": trips["redis"],
                "db_statements": trips["database_by_statement"],
            }
        return result


def done_turns(client, script, conversations: int, engine) -> dict:
    """Median ms and round trips of `conversations` DONE turns (and the turns between)."""
    done: list[float] = []
    done_trips: list[int] = []
    turns = 0
    with counting_database(engine) as counter:
        while len(done) < conversations:
            timings: list[float] = []
            kinds: list[str] = []
            trips: list[int] = []
            webhook_turn.play(client, script, 1, timings, kinds, counter=counter, trips=trips)
            turns += 1
            if kinds == ["done"]:
                done += timings
                done_trips += trips
    return {"done_median_ms": round(bench.median(done) * 1000, 2),
            "done_round_trips": max(done_trips, default=0), "turns": turns,
            "turns_without_reply": sum(1 for n in script.replies if n == 0)}


def run(*, timers: int = 1_000_000, messages: int = 1_000_000, due: int = 1000,
        passes: int = 15, conversations: int = 10, database_url: str | None = None,
        redis_url: str | None = None, fresh_schema: bool = True,
        seed_participants_count: int = SEED_PARTICIPANTS) -> dict:
    """Both sizes, both implementations; returns every measured number."""
    from bot import create_app, scheduling
    from bot.clock import FrozenClock
    from bot.services import build_services
    from bot.sms import FakeSender
    from bot.storage import Database

    rate = max(1.0, due / scheduling.HANDOVER_SECONDS)  # one pass hands all `due` over
    with tempfile.TemporaryDirectory(prefix="bench-clock-") as tmp, \
            bench.redis_server(tmp, redis_url) as redis:
        url = database_url or bench.database_url(tmp)
        kind = bench.database_kind(url)
        db = bench.fresh_database(url) if fresh_schema else Database(url)
        clock = FrozenClock(START)
        settings = bench.bench_settings(tmp, url, sms_max_per_second=rate, redis_url=redis)
        services = build_services(settings, clock=clock, sender=FakeSender(), db=db,
                                  redis_url=redis)
        app = create_app(services=services)
        app.config["TESTING"] = True
        client = app.test_client()
        numbers = [f"+1555400{n:04d}" for n in range(webhook_turn.PARTICIPANTS)]
        result: dict = {"benchmark": "dispatch", "database": kind, "timers": timers,
                        "messages": messages, "due": due, "passes": passes}
        try:
            for number in numbers:
                webhook_turn.enroll(client, number)
            script = webhook_turn.Script(clock, [webhook_turn.Person(n) for n in numbers])
            webhook_turn.play(client, script, webhook_turn.WARM_UP_TURNS)
            script.replies.clear()
            participants = min(seed_participants_count, max(1, timers))
            first = seed_participants(db, kind, participants)
            seed_timers(db, kind, due, first, participants, due_seconds="-60 + i % 60",
                        scope="due")
            analyze(db, kind)
            runner = Passes(services, due)
            result["small"] = {"dispatch": runner.compare(passes),
                               **done_turns(client, script, conversations, db.engine)}
            started = time.perf_counter()
            seed_timers(db, kind, timers, first, participants,
                        due_seconds=f"3600 + (i * 37) % {TIMER_SPREAD}", scope="later")
            seed_messages(db, kind, messages, first, participants)
            drop_clock_indexes(db)
            try:
                analyze(db, kind)
                result["seed_seconds"] = round(time.perf_counter() - started, 1)
                result["large_without_indexes"] = {"dispatch": runner.compare(passes)}
            finally:
                create_clock_indexes(db)
            analyze(db, kind)
            result["large"] = {"dispatch": runner.compare(passes),
                               **done_turns(client, script, conversations, db.engine)}
        finally:
            db.dispose()
    small, large = result["small"], result["large"]
    result["ratio_new_large_to_small"] = round(bench.ratio(
        large["dispatch"]["new"]["median_ms"], small["dispatch"]["new"]["median_ms"]), 2)
    result["ratio_new_to_old_large"] = round(bench.ratio(
        large["dispatch"]["new"]["median_ms"],
        result["large_without_indexes"]["dispatch"]["old"]["median_ms"]), 3)
    result["ratio_done_large_to_small"] = round(bench.ratio(
        large["done_median_ms"], small["done_median_ms"]), 2)
    return result


def correct(result: dict) -> bool:
    """Every pass handed over exactly the due rows and every turn was answered."""
    phases = ("small", "large_without_indexes", "large")
    passes_ok = all(result[p]["dispatch"][i]["passes_handing_wrong_count"] == 0
                    for p in phases for i in ("new", "old"))
    turns_ok = all(result[p]["turns_without_reply"] == 0 for p in ("small", "large"))
    return passes_ok and turns_ok


def report(result: dict) -> None:
    """The human-readable tables."""
    r = result
    load = os.getloadavg()[0]
    print(f"dispatch: {r['due']} due among {r['timers']:,} pending timers and "
          f"{r['messages']:,} texts, {r['database']}; {r['passes']} passes each "
          f"(seeded in {r['seed_seconds']} s; load average {load:.1f} at the end)")
    rows = []
    for phase, label in (("small", f"only the {r['due']} due rows"),
                         ("large_without_indexes", "large, without 0008 indexes"),
                         ("large", "large, with 0008 indexes")):
        for implementation in ("old", "new"):
            d = r[phase]["dispatch"][implementation]
            rows.append((f"{label}: {implementation} pass", f"{d['median_ms']:.1f}",
                         f"{d['p95_ms']:.1f}", f"{d['cpu_ms']:.1f}", str(d["db_round_trips"]),
                         str(d["redis_round_trips"]), ",".join(map(str, d["jobs_per_pass"]))))
    bench.print_table(rows, header=("", "median ms", "p95 ms", "cpu ms", "db trips",
                                    "redis trips", "jobs"))
    print(f"new pass, large / small: {r['ratio_new_large_to_small']:.2f}x; new pass with "
          f"indexes / old pass without: {r['ratio_new_to_old_large']:.3f}")
    print(f"DONE turn median: small {r['small']['done_median_ms']:.2f} ms, large "
          f"{r['large']['done_median_ms']:.2f} ms ({r['ratio_done_large_to_small']:.2f}x); "
          f"round trips {r['small']['done_round_trips']} / {r['large']['done_round_trips']}")


def main(argv: list[str] | None = None) -> int:
    """`python -m bench dispatch`: exit 1 when a pass handed over the wrong rows."""
    parser = argparse.ArgumentParser(prog="python -m bench dispatch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--timers", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=15)
    parser.add_argument("--conversations", type=int, default=10,
                        help="journaling conversations (one DONE each) per size")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    result = run(timers=args.timers, messages=args.messages, due=args.due,
                 passes=args.passes, conversations=args.conversations)
    result["ok"] = correct(result)
    if args.json:
        bench.print_json(result)
    else:
        report(result)
    return 0 if result["ok"] else 1

