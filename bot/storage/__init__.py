"""Database access: engine and session handling, and migrations on demand.

`Database(url)` owns one SQLAlchemy engine; `db.session()` is a unit of work
that commits on success and rolls back on error. Web, worker and CLI processes
each build their own from the same settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from bot.storage.models import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

SQLITE_BUSY_TIMEOUT_MS = 15_000
"""How long a SQLite writer waits for another process's lock (web + worker share a file)."""


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, *, echo: bool = False):
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            _ensure_sqlite_dir(url)
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
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


__all__ = ["Base", "Database", "alembic_config", "MIGRATIONS_DIR"]
