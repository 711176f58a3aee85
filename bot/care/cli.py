"""`flask --app bot staff ...`: care-team accounts from the command line (the first admin)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot import privacy
from bot.care import accounts
from bot.cli import operator
from bot.storage.models import StaffUser

staff_cli = AppGroup("staff", help="Care-team console accounts.")


def _services():
    """The app's adapters."""
    return current_app.extensions["integration_bot"]


def _link(token: str) -> str:
    """The set-up URL printed for the new account."""
    base = _services().settings.public_base_url or "http://127.0.0.1:5000"
    return f"{base}/care/setup/{token}"


@staff_cli.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True,
              help="clinician: participants; admin: also staff, audit log and export")
def staff_add(email: str, role: str) -> None:
    """Create an account and print its one-time set-up link (valid 24 hours)."""
    svc = _services()
    now = svc.clock.now()
    with svc.db.session() as db:
        try:
            user, token = accounts.add_staff(db, email, role, now)
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
        privacy.audit(db, operator(), f"staff.add:{user.id}", None, now)
    click.echo(f"{role} {user.email} created. Set-up link (works once, for 24 hours):")
    click.echo(_link(token))


def _staff_by_email(db, email: str) -> StaffUser:
    """The staff account with this email, or a click error the operator can read."""
    user = db.scalars(select(StaffUser).where(
        StaffUser.email == accounts.normalize_email(email))).first()
    if user is None:
        raise click.ClickException("no account with that email")
    return user


@staff_cli.command("reset")
@click.argument("email")
def staff_reset(email: str) -> None:
    """Issue a new set-up link (new password and authenticator); reactivates the account."""
    svc = _services()
    now = svc.clock.now()
    with svc.db.session() as db:
        user = _staff_by_email(db, email)
        user.active = True
        token = accounts.reset_setup(user, now)
        privacy.audit(db, operator(), f"staff.reset:{user.id}", None, now)
    click.echo(_link(token))


@staff_cli.command("deactivate")
@click.argument("email")
def staff_deactivate(email: str) -> None:
    """Sign an account out everywhere and refuse it from now on."""
    svc = _services()
    now = svc.clock.now()
    with svc.db.session() as db:
        user = _staff_by_email(db, email)
        user.active, user.setup_token_hash = False, None
        privacy.audit(db, operator(), f"staff.deactivate:{user.id}", None, now)
    click.echo(f"{user.email} deactivated")


@staff_cli.command("list")
def staff_list() -> None:
    """Every account with its role and state."""
    with _services().db.session() as db:
        for user in db.scalars(select(StaffUser).order_by(StaffUser.email)):
            state = ("deactivated" if not user.active
                     else "waiting for set-up" if not user.password_hash else "active")
            click.echo(f"{user.email:<40} {user.role:<10} {state}")
