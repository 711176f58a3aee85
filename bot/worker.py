"""The RQ worker process (Procfile `worker`): the queue named by RQ_QUEUE, and a worker
that rides out a Redis outage instead of exiting.

RQ's own loop quits when Redis goes away in the middle of a job. Here the worker is
built again, after a back-off, until Redis answers; a stop request (SIGTERM, Ctrl-C)
still ends the process. Jobs carry only ids and the database holds every message, so a
job lost with Redis is handed over again by the clock process.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

import redis
from rq import Queue, SimpleWorker

from bot.config import Settings
from bot.logsafe import configure_logging
from bot.redis_conn import connect

log = logging.getLogger(__name__)

RECONNECT_FIRST = 0.5
"""Seconds before the first reconnection attempt after Redis went away."""

RECONNECT_MAX = 10.0
"""Longest pause between reconnection attempts (each failure doubles the pause)."""


def run(settings: Settings, *, burst: bool = False) -> int:
    """Work the queue until asked to stop (or, with burst, until it is empty)."""
    delay = RECONNECT_FIRST
    while True:
        try:
            conn = connect(settings.redis_url)
            conn.ping()
            worker = SimpleWorker([Queue(settings.queue_name, connection=conn)],
                                  connection=conn)
            delay = RECONNECT_FIRST
            # RQ logs a line per job at INFO; ours say what matters.
            worker.work(burst=burst, logging_level="WARNING")
            if burst or worker._stop_requested:
                return 0
            log.warning("worker loop ended without a stop request (Redis trouble); restarting")
        except (redis.ConnectionError, redis.TimeoutError) as error:
            log.warning("Redis unavailable (%s); reconnecting in %.1fs",
                        type(error).__name__, delay)
        time.sleep(delay)
        delay = min(delay * 2, RECONNECT_MAX)


def main(argv: list[str] | None = None) -> int:
    """`python -m bot.worker [--burst]`."""
    parser = argparse.ArgumentParser(description="integration-bot RQ worker")
    parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    if not settings.redis_url:
        print("REDIS_URL is not set", file=sys.stderr)
        return 2
    return run(settings, burst=args.burst)


if __name__ == "__main__":
    sys.exit(main())
