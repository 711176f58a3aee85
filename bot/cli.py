"""Operator commands: `flask --app bot <command>`.

enroll, chat, participant, course-end, nudges run-due, flows check, alerts,
keys rotate, scheduler, db upgrade. Commands that show personal data write an
audit record (who ran it: $BOT_OPERATOR, else the OS user).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import time
import uuid

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from bot import alerts, delivery, privacy, runner, safety_plan, safety_review, scheduling
from bot import participants as people
from bot.chat import SentFeed, log_to_file, poll_in_background
from bot.clock_cli import clock_cli
from bot.enrollment import EnrollError, invite
from bot.keys import rotate_all
from bot.phones import InvalidNumber, parse_address
from bot.report import participant_report
from bot.storage.models import Message, ScheduledMessage

RUN_DUE_CHUNK = 500
"""Rows `nudges run-due` claims at a time (each chunk is sent before the next is read)."""


def services():
    """The app's adapters."""
    return current_app.extensions["integration_bot"]


def operator() -> str:
    """Who is running this command (for the audit log)."""
    return os.environ.get("BOT_OPERATOR") or getpass.getuser()


def _address(phone: str):
    """Parse a phone argument or exit with a clear message."""
    try:
        return parse_address(phone, services().settings.default_region)
    except InvalidNumber as exc:
        raise click.BadParameter(str(exc), param_hint="PHONE") from None


def _participant_id(phone: str) -> int:
    """The id of the participant with this number, or exit."""
    svc = services()
    with svc.db.session() as db:
        p = people.find(db, _address(phone).phone, svc.phone_hash_key)
        if p is None:
            raise click.ClickException("no participant with that number")
        return p.id


# ---------------------------------------------------------------- db

db_cli = AppGroup("db", help="Database migrations.")


@db_cli.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (run on each release)."""
    services().db.upgrade()
    click.echo("database is at the latest migration")


# ---------------------------------------------------------------- participants


@click.command("enroll")
@with_appcontext
@click.argument("phone")
@click.option("--tz", "timezone", help="IANA zone, e.g. America/Chicago (guessed otherwise)")
@click.option("--name", help="First name used in the invitation")
def enroll(phone: str, timezone: str | None, name: str | None) -> None:
    """Invite a participant: one text asking for YES (double opt-in)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise click.BadParameter("not an IANA time zone", param_hint="--tz") from None
    _address(phone)  # a clear PHONE error before anything is stored
    try:
        pid = invite(services(), phone, timezone=timezone, name=name)
    except EnrollError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"invited participant #{pid}; they join by replying YES")


@click.command("chat")
@with_appcontext
@click.argument("phone")
def chat(phone: str) -> None:
    """Talk to the bot's logic in the terminal as PHONE (Ctrl-D to quit)."""
    import threading

    svc = services()
    address = _address(phone)
    log_path, restore_logging = log_to_file(svc.settings.instance_path)
    with svc.db.session() as db:
        known = people.find(db, address.phone, svc.phone_hash_key)
        participant_id = known.id if known is not None else None
    click.echo(f"Chatting as {address.phone[:-4]}****. Type DONE, HELP, STOP ... Ctrl-D ends.")
    click.echo(f"Logs go to {log_path}; texts sent on their own show as 'bot (sent)>'.")
    if participant_id is None:
        click.echo("(This number is not enrolled: run `enroll` first to get the invitation.)")
    feed = SentFeed(svc, participant_id)
    interactive = sys.stdin.isatty()
    stop = threading.Event()
    if interactive:
        poll_in_background(feed, click.echo, stop)
    try:
        for line in _prompt_lines() if interactive else sys.stdin:
            inbound = runner.Inbound(sid=f"SMchat{uuid.uuid4().hex}", address=address,
                                     body=line.rstrip("\n"))
            message_id, _ = runner.record_inbound(svc, inbound)
            feed.follow(_sender_of(message_id))
            for text in feed.new_texts():
                click.echo(f"bot (sent)> {text}")
            for text in runner.process_inbound(svc, message_id):
                click.echo(f"bot> {text}")
        for text in feed.new_texts():
            click.echo(f"bot (sent)> {text}")
    finally:
        stop.set()
        restore_logging()


def _sender_of(message_id: int) -> int:
    """The participant an inbound text was stored under."""
    with services().db.session() as db:
        return db.get(Message, message_id).participant_id


def _prompt_lines():
    """Lines typed at a 'you> ' prompt until EOF."""
    while True:
        try:
            yield input("you> ")
        except EOFError:
            click.echo()
            return


@click.command("participant")
@with_appcontext
@click.argument("phone")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def participant(phone: str, as_json: bool) -> None:
    """Show a participant: status, flow, sessions, scheduled messages, last messages."""
    svc = services()
    pid = _participant_id(phone)
    report = participant_report(svc, pid, actor=operator())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"#{pid} {report['status']} {report['timezone']} flow={report['flow']}")
    click.echo(f"journal entries: {report['journal_entries']}")
    for row in report["scheduled"]:
        click.echo(f"  {row['due_at']}  {row['kind']:<12} {row['status']}")


@click.command("course-end")
@with_appcontext
@click.argument("phone")
def course_end(phone: str) -> None:
    """The participant finished their course: weekly maintenance check-ins start."""
    from flows.model import EndCourse, Result

    svc = services()
    pid = _participant_id(phone)
    now = svc.clock.now()

    def step(engine, ctx, state, _message):
        return Result(state=state, events=(EndCourse(now),))

    runner.run_turn(svc, step, participant_id=pid, via="queue")
    click.echo(f"participant #{pid}: maintenance check-ins scheduled")


# ---------------------------------------------------------------- nudges

nudges_cli = AppGroup("nudges", help="Scheduled messages.")


@nudges_cli.command("run-due")
def run_due() -> None:
    """Send everything due now in this process, then exit."""
    svc = services()
    now = svc.clock.now()
    scheduling.release_expired_leases(svc, now)
    due, outcomes = 0, {}
    # Rows that found no rate-limit slot in time come back as pending: take them again,
    # as long as each pass still sends or settles something.
    while ids := scheduling.all_due_ids(svc, now, limit=RUN_DUE_CHUNK):
        done = delivery.deliver_batch(svc, ids)
        due += sum(n for k, n in done.items() if k != "deferred")
        for name, count in done.items():
            outcomes[name] = outcomes.get(name, 0) + count
        if set(done) <= {"deferred", "skipped"}:
            break
    outcomes.pop("deferred", None)
    click.echo(f"due: {due} " + " ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))


@nudges_cli.command("status")
def nudges_status() -> None:
    """Counts of scheduled messages by status, and the RQ queue length."""
    svc = services()
    with svc.db.session() as db:
        rows = db.execute(select(ScheduledMessage.status, func.count())
                          .group_by(ScheduledMessage.status)).all()
    for status, count in sorted(rows):
        click.echo(f"{status:<12} {count}")
    try:
        click.echo(f"rq queue     {len(svc.queue)}")
    except Exception:
        click.echo("rq queue     unreachable")


@click.command("scheduler")
@with_appcontext
@click.option("--interval", default=1.0, show_default=True, help="Seconds between passes")
@click.option("--once", is_flag=True, help="Run one pass and exit")
def scheduler(interval: float, once: bool) -> None:
    """The clock process: hand due rows (and lost work) to RQ, forever."""
    import logging

    log = logging.getLogger("bot.scheduler")
    svc = services()
    log.info("scheduler started (every %.1fs)", interval)
    while True:
        try:
            handed = scheduling.dispatch_due(svc)
            if handed:
                log.info("handed %d due messages to workers", handed)
        except Exception:
            log.exception("scheduler pass failed; trying again")
        if once:
            return
        time.sleep(interval)


# ---------------------------------------------------------------- flows, alerts, keys

flows_cli = AppGroup("flows", help="Conversation definitions.")


@flows_cli.command("check")
def flows_check() -> None:
    """Validate every flow, plan and message; exit 1 on any problem."""
    from flows import loader

    problems = loader.check()
    safety_problems, safety_summary = safety_review.safety_rule_problems()
    problems += safety_problems
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(1)
    defs = loader.load()
    click.echo(f"ok: {len(defs.flows)} flows, {len(defs.plans)} plans, "
               f"{len(defs.messages)} messages, {safety_summary}")


flows_cli.add_command(safety_review.safety_sheet)


@click.group("alerts", cls=AppGroup, invoke_without_command=True)
@click.pass_context
def alerts_cli(ctx: click.Context) -> None:
    """Care-team alerts (with no subcommand: list the open ones)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(alerts_list)



@alerts_cli.command("list")
def alerts_list() -> None:
    """Open alerts, oldest first."""
    svc = services()
    rows = alerts.open_alerts(svc)
    with svc.db.session() as db:
        privacy.audit(db, operator(), "alerts.list", None, svc.clock.now())
    if not rows:
        click.echo("no open alerts")
    shown = None
    for row in rows:  # grouped by participant, most urgent level first
        if row["participant"] != shown:
            shown = row["participant"]
            click.echo(f"participant #{shown} (...{row['phone_last4']})")
        click.echo(f"#{row['id']} {row['level']:<7} {row['category'] or '-':<18} "
                   f"texts={row['signals']} first={row['created_at']} "
                   f"last={row['last_signal_at']} pages: attempted={row['attempted']} "
                   f"accepted={row['accepted']} failed={row['failed']}")


@alerts_cli.command("ack")
@click.argument("alert_id", type=int)
@click.option("--by", "who", help="Who acknowledges (default: $BOT_OPERATOR or OS user)")
def alerts_ack(alert_id: int, who: str | None) -> None:
    """Acknowledge an alert so it stops paging."""
    if not alerts.acknowledge(services(), alert_id, who or operator()):
        raise click.ClickException(f"no open alert #{alert_id}")
    click.echo(f"alert #{alert_id} acknowledged")


safety_plan_cli = AppGroup("safety-plan", help="A participant's personal safety plan.")

PLAN_OPTIONS = [("warning_signs", "--warning-signs"), ("coping", "--coping"),
                ("distractions", "--distractions"), ("people", "--people"),
                ("professionals", "--professionals"), ("environment", "--environment"),
                ("reasons", "--reasons")]


def _plan_options(func):
    for key, flag in reversed(PLAN_OPTIONS):
        func = click.option(flag, key, help=f"Safety plan section: {key.replace('_', ' ')}")(func)
    return func


@safety_plan_cli.command("set")
@click.argument("phone")
@_plan_options
def safety_plan_set(phone: str, **sections: str | None) -> None:
    """Store (or update sections of) a participant's safety plan; texted back on PLAN."""
    svc = services()
    given = {k: v for k, v in sections.items() if v is not None}
    if not given:
        raise click.UsageError("give at least one section, e.g. --coping 'walk the dog'")
    now = svc.clock.now()
    with svc.db.session() as db:
        p = people.find(db, _address(phone).phone, svc.phone_hash_key)
        if p is None or p.status == "deleted":
            raise click.ClickException("no such participant")
        try:
            plan = safety_plan.store(db, p.id, given, operator(), now)
        except safety_plan.PlanError as error:
            raise click.ClickException(str(error)) from None
        privacy.audit(db, operator(), "safety_plan.set", p.id, now)
        count = len(safety_plan.load(plan))
    click.echo(f"safety plan saved for participant #{p.id} ({count} sections); PLAN texts it")


@safety_plan_cli.command("show")
@click.argument("phone")
def safety_plan_show(phone: str) -> None:
    """Print a participant's safety plan as it would be texted (audited)."""
    svc = services()
    with svc.db.session() as db:
        p = people.find(db, _address(phone).phone, svc.phone_hash_key)
        if p is None:
            raise click.ClickException("no such participant")
        sections = safety_plan.find(db, p.id)
        privacy.audit(db, operator(), "safety_plan.show", p.id, svc.clock.now())
    if not sections:
        click.echo(f"participant #{p.id} has no safety plan")
        return
    for text in safety_plan.texts(sections):
        click.echo(text)
        click.echo("---")


keys_cli = AppGroup("keys", help="Encryption keys.")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt all stored text under the first JOURNAL_ENCRYPTION_KEY."""
    counts = rotate_all(services())
    click.echo("re-encrypted " + ", ".join(f"{k}: {v}" for k, v in counts.items()))


def init_app(app: Flask) -> None:
    """Register every command on the app."""
    for command in (db_cli, enroll, chat, participant, course_end, nudges_cli, scheduler,
                    flows_cli, alerts_cli, keys_cli, clock_cli, safety_plan_cli):
        app.cli.add_command(command)
