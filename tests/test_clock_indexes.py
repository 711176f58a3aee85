"""The clock's queries read only the rows they look for, however many texts and timers exist.

Each statement of a real dispatch pass is explained by the database itself
(PostgreSQL with sequential scans priced out, so a usable index is always
chosen; SQLite's own planner) and must use migration 0008's partial indexes
rather than scanning `messages` or `scheduled_messages`.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event

from bench import clock_scale
from bot import alerts, scheduling

pytestmark = pytest.mark.integration


def statements_of_a_pass(db, now) -> list[tuple[str, object]]:
    """(SQL, parameters) of the database part of one dispatch pass, as sent to the driver."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        with db.session() as s:
            scheduling.release_leases(s, now)
            scheduling.claim_due(s, now, cap=100)
            scheduling.stuck_messages(s, now)
            alerts.due_alert_ids(s, now)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def plan(db, statement: str, parameters) -> str:
    """The database's plan for a statement (not executed)."""
    with db.engine.connect() as conn:
        if db.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            text = "\n".join(row[0] for row in rows)
        else:
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            text = "\n".join(row[-1] for row in rows)
        conn.rollback()
    return text


def scans_whole(plan_text: str, table: str) -> bool:
    """Whether a plan reads every row of table (PostgreSQL or SQLite wording)."""
    return any(line.strip().startswith((f"Seq Scan on {table}", f"-> Seq Scan on {table}"))
               or line.strip() == f"SCAN {table}"
               for line in plan_text.replace("->", "\n->").splitlines())


def test_each_clock_query_uses_its_partial_index(db):
    kind = db.engine.dialect.name
    first = clock_scale.seed_participants(db, kind, 20)
    clock_scale.seed_timers(db, kind, 300, first, 20, due_seconds="-60 + i", scope="t")
    clock_scale.seed_messages(db, kind, 300, first, 20)
    clock_scale.analyze(db, kind)
    joined = "\n".join(plan(db, statement, params)
                        for statement, params in statements_of_a_pass(db, clock_scale.START))
    assert "ix_messages_inbound_waiting" in joined and "ix_messages_outbound_queued" in joined
    assert not scans_whole(joined, "messages"), joined
    assert not scans_whole(joined, "scheduled_messages"), joined
