"""Counting database and Redis round trips while a piece of code runs.

Database: SQLAlchemy event hooks on the engine count every statement sent
(`before_cursor_execute`), every BEGIN, COMMIT and ROLLBACK, and the pool's
pre-ping on each checkout (PostgreSQL); each is one round trip to the server
(on SQLite a call into the library instead). Redis: one command or one
pipeline `execute()` is one round trip.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import event

_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?(\w+)", re.IGNORECASE)


def describe(statement: str) -> str:
    """A short label for a SQL statement: verb, first table, FOR UPDATE / RETURNING."""
    words = statement.split(None, 1)
    verb = words[0].upper() if words else "?"
    # The statement's own table, not one of its subqueries': the least nested match.
    matches = [(statement.count("(", 0, m.start()) - statement.count(")", 0, m.start()),
                n, m.group(1)) for n, m in enumerate(_TABLE.finditer(statement))]
    label = f"{verb} {min(matches)[2]}" if matches else verb
    upper = statement.upper()
    if "FOR UPDATE" in upper:
        label += " FOR UPDATE"
    if "RETURNING" in upper:
        label += " RETURNING"
    return label


@dataclass
class DatabaseTrips:
    """Round trips seen on one engine: statements by label, plus transaction control."""

    statements: Counter = field(default_factory=Counter)
    trace: list[str] = field(default_factory=list)
    begins: int = 0
    commits: int = 0
    rollbacks: int = 0
    pings: int = 0
    commit_seconds: list[float] = field(default_factory=list)  # each COMMIT's wait

    @property
    def total(self) -> int:
        """Every round trip: statements, BEGIN, COMMIT, ROLLBACK and pre-pings."""
        return sum(self.statements.values()) + self.begins + self.commits + self.rollbacks \
            + self.pings

    def reset(self) -> None:
        """Start counting from zero."""
        self.statements.clear()
        self.trace.clear()
        self.begins = self.commits = self.rollbacks = self.pings = 0
        self.commit_seconds.clear()

    def summary(self) -> dict:
        """The counts as plain data."""
        return {"total": self.total, "statements": sum(self.statements.values()),
                "begin": self.begins, "commit": self.commits, "rollback": self.rollbacks,
                "ping": self.pings, "by_statement": dict(self.statements)}


@contextmanager
def counting_database(engine) -> Iterator[DatabaseTrips]:
    """Count the engine's round trips inside the block."""
    trips = DatabaseTrips()
    sqlite = engine.dialect.name == "sqlite"
    pre_ping = bool(getattr(engine.pool, "_pre_ping", False))

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("BEGIN"):
            trips.begins += 1  # SQLite: the BEGIN IMMEDIATE bot.storage issues itself
            trips.trace.append("BEGIN")
            return
        label = describe(statement)
        trips.statements[label] += 1
        trips.trace.append(label)

    def on_begin(conn):
        if not sqlite:  # psycopg sends BEGIN before the first statement of a transaction
            trips.begins += 1
            trips.trace.append("BEGIN")

    def on_commit(conn):
        trips.commits += 1
        trips.trace.append("COMMIT")

    def on_rollback(conn):
        trips.rollbacks += 1
        trips.trace.append("ROLLBACK")

    def on_checkout(dbapi_conn, record, proxy):
        # pool_pre_ping pings at every checkout; bot.storage pings only idle connections
        # (its hook runs first and marks the checkouts it pinged).
        if pre_ping or record.info.get("pinged"):
            trips.pings += 1
            trips.trace.append("ping")

    dialect = engine.dialect
    plain_commit = dialect.do_commit

    def timed_commit(dbapi_conn):  # how long the server takes to make a COMMIT durable
        started = time.perf_counter()
        try:
            plain_commit(dbapi_conn)
        finally:
            trips.commit_seconds.append(time.perf_counter() - started)

    dialect.do_commit = timed_commit
    hooks = [(engine, "before_cursor_execute", on_statement), (engine, "begin", on_begin),
             (engine, "commit", on_commit), (engine, "rollback", on_rollback),
             (engine.pool, "checkout", on_checkout)]
    for target, name, fn in hooks:
        event.listen(target, name, fn)
    try:
        yield trips
    finally:
        dialect.do_commit = plain_commit
        for target, name, fn in hooks:
            event.remove(target, name, fn)


@dataclass
class RedisTrips:
    """Round trips to Redis: single commands and pipeline executions."""

    commands: int = 0
    pipelines: int = 0

    @property
    def total(self) -> int:
        """Every round trip."""
        return self.commands + self.pipelines

    def reset(self) -> None:
        """Start counting from zero."""
        self.commands = self.pipelines = 0


@contextmanager
def counting_redis() -> Iterator[RedisTrips]:
    """Count round trips of every redis-py client in this process inside the block."""
    from redis.client import Pipeline, Redis

    trips = RedisTrips()
    command, execute = Redis.execute_command, Pipeline.execute

    def counted_command(self, *args, **options):
        trips.commands += 1
        return command(self, *args, **options)

    def counted_execute(self, *args, **options):
        if self.command_stack:
            trips.pipelines += 1
        return execute(self, *args, **options)

    Redis.execute_command, Pipeline.execute = counted_command, counted_execute
    try:
        yield trips
    finally:
        Redis.execute_command, Pipeline.execute = command, execute
