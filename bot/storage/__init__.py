"""Database access: engine and session handling, and migrations on demand.

`Database(url)` owns one SQLAlchemy engine; `db.session()` is a unit of work
that commits on success and rolls back on error. Web, worker and CLI processes
each build their own from the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 15_000
"""How long a SQLite writer waits for another process's lock (web + worker share a file)."""

IDLE_PING_SECONDS = 10.0
"""A pooled server connection idle this long is pinged before use (see Database)."""

POOL_RECYCLE_SECONDS = 1800
"""A server connection this old is replaced at checkout (proxies and servers that end
long-lived connections on their own schedule)."""


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            _ensure_sqlite_dir(url)
        else:
            # No pool_pre_ping: it costs a round trip on every checkout, about a tenth of
            # a turn. A connection is only likely dead after sitting idle (server
            # restarted, a proxy's idle timeout), so only one idle IDLE_PING_SECONDS is
            # pinged (_ping_if_idle), and none lives past POOL_RECYCLE_SECONDS. One that
            # dies while busy raises a disconnect error, on which SQLAlchemy discards
            # the whole pool; the webhook then tries its text once more on a fresh
            # connection (bot.runner.receive), workers are retried by RQ and the clock.
            kwargs.update(pool_size=10, max_overflow=20, pool_recycle=POOL_RECYCLE_SECONDS)
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        else:
            event.listen(self.engine.pool, "checkin", _stamp_idle)
            event.listen(self.engine.pool, "checkout", _ping_if_idle(self.engine.dialect))
        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commit when the block succeeds, roll back when it raises."""
        session = self.Session()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to revision."""
        from alembic import command

        command.upgrade(alembic_config(self.url), revision)

    def drop_all(self) -> None:
        """Drop every table and Alembic's record of them (tests and benchmarks start clean)."""
        from sqlalchemy import text

        with self.engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        from sqlalchemy import text

        try:
            with self.engine.connect() as conn:
                conn.execute(text("select 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        """Close pooled connections (after fork, at shutdown, in tests)."""
        self.engine.dispose()


def insert_for(db: Session | str, table):
    """An INSERT for the session's (or the named) database, with its ON CONFLICT clauses.

    PostgreSQL and SQLite spell ON CONFLICT ... DO NOTHING / DO UPDATE the same way;
    SQLAlchemy keeps the two constructs apart.
    """
    dialect = db if isinstance(db, str) else db.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def alembic_config(url: str):
    """An Alembic Config pointing at our migrations and the given database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _ensure_sqlite_dir(url: str) -> None:
    """Create the folder of a file-backed SQLite database."""
    path = url.split("///", 1)[-1]
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _stamp_idle(_dbapi_conn, record) -> None:
    """Remember when a connection went back to the pool."""
    if record is not None:
        record.info["idle_since"] = time.monotonic()


def _ping_if_idle(dialect):
    """A checkout hook: ping a connection that sat idle IDLE_PING_SECONDS; a dead one is
    replaced by the pool (DisconnectionError) before anyone uses it.

    Sets record.info["pinged"] for this checkout (bench/roundtrips.py counts it)."""
    def on_checkout(dbapi_conn, record, _proxy) -> None:
        idle_since = record.info.get("idle_since")
        record.info["pinged"] = idle_since is not None and \
            time.monotonic() - idle_since >= IDLE_PING_SECONDS
        if not record.info["pinged"]:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as error:
            raise exc.DisconnectionError("idle connection did not answer") from error

    return on_checkout


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    """WAL lets the web and worker processes read while one writes."""
    # Let SQLAlchemy's "begin" event issue BEGIN itself (see _sqlite_begin_immediate).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin_immediate(conn) -> None:
    """Take SQLite's write lock up front: a read-then-write turn can't deadlock or lose updates."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


__all__ = ["Base", "Database", "alembic_config", "insert_for", "MIGRATIONS_DIR"]
