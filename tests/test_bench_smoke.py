"""The benchmarks run end to end at tiny sizes and their correctness outputs hold.

Only what a participant or the carrier would notice is asserted (every nudge
sent once, the per-second limit kept, every text answered, no process left
behind); timings never are.
"""

from __future__ import annotations

import os

import pytest

from bench import clock_scale, load, send_rate, webhook_turn

pytestmark = pytest.mark.integration

SMOKE_RATE = 20.0
"""A low SMS_MAX_PER_SECOND, so 40 messages span two seconds of rate limit."""


def running(pid: int) -> bool:
    """Whether a process with this id still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_send_rate(db, redis_url, **options) -> dict:
    """The send-rate benchmark at smoke size on the suite's database and Redis."""
    return send_rate.run(40, latency=0.01, rate=SMOKE_RATE, database_url=db.url,
                         redis_url=redis_url, fresh_schema=False, **options)


def test_send_rate_sends_every_nudge_once_and_stops_its_workers(db, redis_url):
    result = run_send_rate(db, redis_url, baseline_messages=40)
    assert result["rows_by_status"] == {"sent": 40}
    assert result["texts_received"] == 40
    assert result["duplicates"] == 0 and result["baseline_duplicates"] == 0
    assert len(result["worker_pids"]) == 2
    assert not any(running(pid) for pid in result["worker_pids"])


def test_send_rate_never_exceeds_the_limit_in_any_second(db, redis_url):
    result = run_send_rate(db, redis_url, baseline_messages=0)
    assert result["rows_by_status"] == {"sent": 40}
    assert result["pipeline_max_per_second"] <= SMOKE_RATE


def test_webhook_answers_every_turn_and_stores_the_journal(db):
    # 2 participants x (5 enrollment texts + 2 whole 7-text conversations):
    # 20 warm-up turns and 8 timed ones make 28 conversation turns.
    result = webhook_turn.run(8, participants=2, database_url=db.url, fresh_schema=False,
                              memory=False)
    assert result["turns_without_reply"] == 0
    assert result["inbound_processed"] == 2 * 5 + 28
    assert result["sessions_done"] == 4
    assert result["journal_entries"] == 4 * 5


def test_webhook_bench_traces_the_round_trips_of_each_kind_of_turn(db):
    result = webhook_turn.run(8, participants=2, database_url=db.url, fresh_schema=False,
                              memory=False)
    for kind in ("done", "answer", "journal"):
        assert result[f"{kind}_round_trips"] > 0
        assert "COMMIT" in result[f"{kind}_trace"]
    assert any(label.startswith("INSERT scheduled_messages") for label in result["done_trace"])


def test_dispatch_bench_hands_every_due_row_over_in_every_pass(db, redis_url):
    result = clock_scale.run(timers=300, messages=300, due=60, passes=2, conversations=1,
                             database_url=db.url, redis_url=redis_url, fresh_schema=False,
                             seed_participants_count=50)
    assert clock_scale.correct(result)
    for phase in ("small", "large_without_indexes", "large"):
        for implementation in ("new", "old"):
            # 60 due at 6 texts/s: batches of 30 (5 s of sending), two jobs per pass.
            assert result[phase]["dispatch"][implementation]["jobs_per_pass"] == [2]
        assert result[phase]["dispatch"]["new"]["redis_round_trips"] == 1
    assert result["small"]["turns_without_reply"] == result["large"]["turns_without_reply"] == 0


def test_load_bench_answers_every_text_under_gunicorn_and_stops_both_servers(db):
    # 60 participants: even a fast machine's saturation second (a few hundred texts) leaves
    # each far under the flood guard's 30 texts a minute, past which no reply is by design.
    result = load.run(rate=10, seconds=1, clients=2, participants=60, database_url=db.url,
                      fresh_schema=False, warm_up=0.5)
    bot, bare = result["bot"], result["baseline"]
    for phase in ("steady", "saturation"):
        assert bot[phase]["errors"] == bare[phase]["errors"] == 0
        assert bot[phase]["answered"] > 0
        assert bot[phase]["with_reply"] == bot[phase]["answered"]  # every text answered
        assert bare[phase]["with_reply"] == 0  # the bare route answers an empty TwiML
    assert not running(bot["pid"]) and not running(bare["pid"])
