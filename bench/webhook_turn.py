"""Webhook turn: one inbound text through the whole app, against a bare signed route.

Each turn is a signed POST through Flask's test client: signature check ->
record the text -> engine -> handlers -> commit -> TwiML. The conversation is
the typical one after a session: DONE, five journal answers, then JOURNAL to
read them back, repeated by a few enrolled participants in turn. Baseline, in
the same process: a bare Flask route that checks the signature with the SDK's
RequestValidator and answers an empty MessagingResponse. Memory: peak
tracemalloc growth over the same number of turns, for both.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import bench

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
"""Monday 10:00 in New York: replies, not nudges, so quiet hours never matter."""

PARTICIPANTS = 5
"""Enrolled participants taking turns (each keeps a realistic, growing history)."""

WARM_UP_TURNS = 20
"""Turns run before measuring (imports, caches, connection pools)."""

JOURNAL_ANSWERS = (
    "I saw the ocean and my grandmother",
    "I am allowed to rest",
    "Let go of rushing, bring more music",
    "Lighter, less foggy",
    "Call my brother on Sunday",
)
CONVERSATION = ("DONE", *JOURNAL_ANSWERS, "JOURNAL")
"""One journaling conversation after a session, turn by turn."""

TURN_GAP = timedelta(minutes=2)
"""Time between a participant's texts."""
SESSION_GAP = timedelta(days=3)
"""Time between one journaling conversation and the participant's next session."""


@dataclass
class Person:
    """An enrolled participant working through the conversation script."""

    number: str
    position: int = 0
    cycles: int = 0


@dataclass
class Script:
    """Hands out the next (number, text) in rotation, moving the frozen clock along."""

    clock: object
    people: list[Person]
    turn: int = 0
    replies: list[int] = field(default_factory=list)

    def next(self) -> tuple[str, str]:
        """The next participant's next text."""
        person = self.people[self.turn % len(self.people)]
        self.turn += 1
        text = CONVERSATION[person.position]
        person.position += 1
        if person.position == len(CONVERSATION):
            person.position, person.cycles = 0, person.cycles + 1
            self.clock.advance(seconds=SESSION_GAP.total_seconds() / len(self.people))
        else:
            self.clock.advance(seconds=TURN_GAP.total_seconds() / len(self.people))
        return person.number, text


def signed(number: str, body: str) -> tuple[dict, dict]:
    """Form fields Twilio sends for an inbound text, and the headers with its signature."""
    from twilio.request_validator import RequestValidator

    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": bench.ACCOUNT_SID,
              "From": number, "To": bench.FROM_NUMBER, "Body": body, "NumMedia": "0",
              "NumSegments": "1", "SmsStatus": "received", "ApiVersion": "2010-04-01"}
    signature = RequestValidator(bench.AUTH_TOKEN).compute_signature(
        "http://localhost/twilio/sms", params)
    return params, {"X-Twilio-Signature": signature}


def reply_count(data: bytes) -> int:
    """How many <Message> elements a TwiML answer holds."""
    return len(ET.fromstring(data).findall("Message"))


def baseline_app():
    """A bare Flask route: validate the signature, answer an empty MessagingResponse."""
    from flask import Flask, Response, request
    from twilio.request_validator import RequestValidator
    from twilio.twiml.messaging_response import MessagingResponse

    app = Flask("bench_baseline")
    validator = RequestValidator(bench.AUTH_TOKEN)

    @app.post("/twilio/sms")
    def inbound():
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(request.url, request.form, signature):
            return Response("forbidden\n", status=403)
        return Response(str(MessagingResponse()), mimetype="application/xml")

    return app


def enroll(client, number: str) -> None:
    """Invite by the operator command, then answer YES and the setup questions."""
    result = client.application.test_cli_runner().invoke(
        args=["enroll", number, "--tz", "America/New_York", "--name", "Sam"])
    if result.exit_code != 0:
        raise RuntimeError(f"enroll failed: {result.output}")
    for text in ("YES", "yes", "10:30pm", "yes", "skip"):
        params, headers = signed(number, text)
        response = client.post("/twilio/sms", data=params, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"enrollment turn answered {response.status_code}")


def kind_of(text: str) -> str:
    """Which part of the conversation a text is: done, answer or journal."""
    return {"DONE": "done", "JOURNAL": "journal"}.get(text, "answer")


def play(client, script: Script, turns: int, timings: list[float] | None = None,
         kinds: list[str] | None = None, *, counter=None, trips: list[int] | None = None,
         traces: list[list[str]] | None = None, commits: list[float] | None = None) -> None:
    """Post `turns` signed texts; record each turn's seconds, kind and reply count, and
    with a counter (bench.roundtrips.DatabaseTrips) each turn's database round trips
    (and, with traces, the statements in order)."""
    for _ in range(turns):
        number, text = script.next()
        params, headers = signed(number, text)
        if counter is not None:
            counter.reset()
        started = time.perf_counter()
        response = client.post("/twilio/sms", data=params, headers=headers)
        elapsed = time.perf_counter() - started
        if trips is not None:
            trips.append(counter.total)
        if traces is not None:
            traces.append(list(counter.trace))
        if commits is not None:
            commits.extend(counter.commit_seconds)
        if response.status_code != 200:
            raise RuntimeError(f"turn {script.turn} answered {response.status_code}")
        if timings is not None:
            timings.append(elapsed)
            script.replies.append(reply_count(response.data))
        if kinds is not None:
            kinds.append(kind_of(text))


def memory_growth(client, script: Script, turns: int) -> dict:
    """Peak and retained tracemalloc growth (bytes) over `turns` turns."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        play(client, script, turns)
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return {"peak": peak - before, "retained": current - before}


def timing_summary(timings: list[float]) -> dict:
    """Median and p95 in milliseconds."""
    return {"median_ms": bench.median(timings) * 1000,
            "p95_ms": bench.percentile(timings, 0.95) * 1000}


def stored_counts(db) -> dict[str, int]:
    """Rows the turns left behind: journal entries, inbound texts, done sessions."""
    from sqlalchemy import func, select

    from bot.storage.models import JournalEntry, Message, Session

    with db.session() as s:
        return {
            "journal_entries": s.scalar(select(func.count()).select_from(JournalEntry)),
            "inbound_processed": s.scalar(select(func.count()).select_from(Message).where(
                Message.direction == "in", Message.status == "processed")),
            "sessions_done": s.scalar(select(func.count()).select_from(Session).where(
                Session.done_at.is_not(None))),
        }


def round_trips(client, script: Script, engine, participants: int) -> dict:
    """Database round trips per kind of turn over one whole conversation per participant,
    counted apart from the timed turns (the event hooks cost time), with one trace each."""
    from bench.roundtrips import counting_database

    kinds: list[str] = []
    trips: list[int] = []
    traces: list[list[str]] = []
    commits: list[float] = []
    with counting_database(engine) as counter:
        play(script=script, client=client, turns=len(CONVERSATION) * participants, kinds=kinds,
             timings=[], counter=counter, trips=trips, traces=traces, commits=commits)
    # The COMMIT's own wait: on PostgreSQL the WAL flush to disk (synchronous_commit).
    result = {"commit_median_ms": round(bench.median(commits) * 1000, 3) if commits else 0.0}
    for kind in ("done", "answer", "journal"):
        seen = [(n, trace) for n, trace, k in zip(trips, traces, kinds, strict=True)
                if k == kind]
        result[f"{kind}_round_trips"] = int(bench.median([n for n, _ in seen]))
        result[f"{kind}_trace"] = seen[len(seen) // 2][1] if seen else []
    return result


def run(turns: int = 500, *, participants: int = PARTICIPANTS, database_url: str | None = None,
        fresh_schema: bool = True, memory: bool = True) -> dict:
    """Time and size both apps over the same script; returns every measured number."""
    from bot import create_app
    from bot.clock import FrozenClock
    from bot.services import build_services
    from bot.sms import FakeSender
    from bot.storage import Database

    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        url = database_url or bench.database_url(tmp)
        db = bench.fresh_database(url) if fresh_schema else Database(url)
        clock = FrozenClock(START)
        services = build_services(bench.bench_settings(tmp, url), clock=clock,
                                  sender=FakeSender(), db=db)
        app = create_app(services=services)
        app.config["TESTING"] = True
        client = app.test_client()
        base_client = baseline_app().test_client()
        numbers = [f"+1555400{n:04d}" for n in range(participants)]
        try:
            for number in numbers:
                enroll(client, number)
            script = Script(clock, [Person(n) for n in numbers])
            base_script = Script(FrozenClock(START), [Person(n) for n in numbers])
            play(client, script, WARM_UP_TURNS)
            play(base_client, base_script, WARM_UP_TURNS)
            script.replies.clear()
            full_times: list[float] = []
            base_times: list[float] = []
            kinds: list[str] = []
            play(base_client, base_script, turns, base_times)
            play(client, script, turns, full_times, kinds)
            replies = list(script.replies)
            base_mem = memory_growth(base_client, base_script, turns) if memory else {}
            full_mem = memory_growth(client, script, turns) if memory else {}
            counts = stored_counts(db)
            trips = round_trips(client, script, db.engine, participants)
        finally:
            db.dispose()
    base, full = timing_summary(base_times), timing_summary(full_times)
    result = {
        "benchmark": "webhook", "turns": turns, "participants": participants,
        "database": bench.database_kind(url),
        "baseline_median_ms": round(base["median_ms"], 3),
        "baseline_p95_ms": round(base["p95_ms"], 3),
        "median_ms": round(full["median_ms"], 3), "p95_ms": round(full["p95_ms"], 3),
        "ratio_median": round(bench.ratio(full["median_ms"], base["median_ms"]), 1),
        "ratio_p95": round(bench.ratio(full["p95_ms"], base["p95_ms"]), 1),
        "turns_without_reply": sum(1 for n in replies if n == 0),
        **{f"{kind}_median_ms": round(bench.median(
            [t for t, k in zip(full_times, kinds, strict=True) if k == kind]) * 1000, 3)
           for kind in ("done", "answer", "journal")},
        **counts,
        **trips,
        "baseline_round_trips": 0,
    }
    if memory:
        result.update(
            baseline_peak_kib=round(base_mem["peak"] / 1024, 1),
            baseline_retained_kib=round(base_mem["retained"] / 1024, 1),
            peak_kib=round(full_mem["peak"] / 1024, 1),
            retained_kib=round(full_mem["retained"] / 1024, 1),
            ratio_peak=round(bench.ratio(full_mem["peak"], base_mem["peak"]), 1),
        )
    return result


def report(result: dict) -> None:
    """The human-readable table."""
    r = result
    print(f"webhook: {r['turns']} turns by {r['participants']} participants, {r['database']}")
    rows = [
        ("median per turn (ms)", f"{r['baseline_median_ms']:.2f}", f"{r['median_ms']:.2f}",
         f"{r['ratio_median']:.1f}x"),
        ("p95 per turn (ms)", f"{r['baseline_p95_ms']:.2f}", f"{r['p95_ms']:.2f}",
         f"{r['ratio_p95']:.1f}x"),
    ]
    if "peak_kib" in r:
        rows += [
            (f"peak memory growth, {r['turns']} turns (KiB)", f"{r['baseline_peak_kib']:.0f}",
             f"{r['peak_kib']:.0f}", f"{r['ratio_peak']:.1f}x"),
            ("retained after the turns (KiB)", f"{r['baseline_retained_kib']:.0f}",
             f"{r['retained_kib']:.0f}", "-"),
        ]
    bench.print_table(rows, header=("", "baseline", "webhook", "ratio"))
    print(f"median by text: DONE {r['done_median_ms']:.2f} ms, journal answer "
          f"{r['answer_median_ms']:.2f} ms, JOURNAL {r['journal_median_ms']:.2f} ms")
    print(f"database round trips per turn (median; the bare route makes none): DONE "
          f"{r['done_round_trips']}, journal answer {r['answer_round_trips']}, JOURNAL "
          f"{r['journal_round_trips']}")
    print(f"  median wait for a COMMIT: {r['commit_median_ms']:.2f} ms")
    for kind, label in (("answer", "a journal answer"), ("done", "DONE")):
        print(f"  {label}: " + ", ".join(compress(r[f"{kind}_trace"])))
    print(f"stored: {r['journal_entries']} journal entries, {r['sessions_done']} sessions done, "
          f"{r['inbound_processed']} inbound texts processed; "
          f"{r['turns_without_reply']} timed turns without a reply")


def compress(trace: list[str]) -> list[str]:
    """A statement trace with repeats folded: ['INSERT messages x3', ...]."""
    folded: list[str] = []
    count = 0
    for n, label in enumerate(trace):
        count += 1
        if n + 1 == len(trace) or trace[n + 1] != label:
            folded.append(label if count == 1 else f"{label} x{count}")
            count = 0
    return folded


def main(argv: list[str] | None = None) -> int:
    """`python -m bench webhook`: exit 1 when a turn went unanswered."""
    parser = argparse.ArgumentParser(prog="python -m bench webhook",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--participants", type=int, default=PARTICIPANTS)
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc pass")
    parser.add_argument("--json", action="store_true", help="print one JSON line only")
    args = parser.parse_args(argv)
    result = run(args.turns, participants=args.participants, memory=not args.no_memory)
    result["ok"] = result["turns_without_reply"] == 0
    if args.json:
        bench.print_json(result)
    else:
        report(result)
    return 0 if result["ok"] else 1
