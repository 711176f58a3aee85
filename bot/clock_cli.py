"""`flask --app bot clock ...`: move a demo's or test's CLOCK_FILE time, atomically."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from bot.clock import CLOCK_FILE_FORMAT, FileClock, parse_instant
from flows.schedule import parse_duration

clock_cli = AppGroup("clock", help="The CLOCK_FILE time that every process reads (demos, tests).")


def _path() -> str:
    """The CLOCK_FILE path, or exit with how to set one."""
    path = current_app.extensions["integration_bot"].settings.clock_file
    if not path:
        raise click.ClickException("CLOCK_FILE is not set (see README, Configuration)")
    return path


@clock_cli.command("show")
def clock_show() -> None:
    """Print the time every process reads now."""
    click.echo(FileClock(_path()).now().isoformat())


@clock_cli.command("set")
@click.argument("when")
def clock_set(when: str) -> None:
    """Set the time: WHEN is an ISO-8601 instant with its offset."""
    try:
        at = parse_instant(when)
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; give {CLOCK_FILE_FORMAT}", param_hint="WHEN") from None
    FileClock(_path()).set(at)
    click.echo(at.isoformat())


@clock_cli.command("advance")
@click.argument("duration")
def clock_advance(duration: str) -> None:
    """Move the time forward by DURATION ("90m", "2h", "1d"); running time keeps running."""
    try:
        step = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="DURATION") from None
    click.echo(FileClock(_path()).advance(seconds=step.total_seconds()).isoformat())
