"""Wiring the console into the app: secret key, cookies, CSRF, Flask-Login, idle timeout."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.care import accounts
from bot.care import views as _views  # noqa: F401  (registers the routes on bp)
from bot.care.blueprint import bp, services
from bot.care.cli import staff_cli

IDLE_TIMEOUT = timedelta(minutes=15)
"""A console session with no page request for this long must sign in again."""

SECRET_KEY_FILE = "secret.key"

PUBLIC_ENDPOINTS = frozenset({"care.login", "care.setup", "care.static"})

NOT_ACTIVITY = frozenset({"care.inbox_poll"})
"""Requests a page makes by itself (polling); they do not keep a session alive."""

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "care.login"
login_manager.login_message = "Please sign in."
login_manager.session_protection = "strong"


@login_manager.user_loader
def _load_staff(staff_id: str):
    """The signed-in staff member, re-read on every request (deactivation takes effect)."""
    if not staff_id.isdigit():
        return None
    with services().db.session() as db:
        return accounts.load_staff(db, int(staff_id))


def init_app(app: Flask) -> None:
    """Register the console under /care/ with safe session and CSRF settings."""
    settings = app.config["SETTINGS"]
    app.secret_key = settings.secret_key or dev_secret_key(settings.instance_path)
    app.config.update(
        SESSION_COOKIE_NAME="care_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=IDLE_TIMEOUT, SESSION_REFRESH_EACH_REQUEST=True,
        REMEMBER_COOKIE_DURATION=timedelta(0), WTF_CSRF_SSL_STRICT=settings.production,
    )
    if settings.proxy_hops:
        # Behind a load balancer the client's address (login throttling, audit) and the
        # scheme come from X-Forwarded-* headers, trusted only for the configured hops.
        n = settings.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    csrf.init_app(app)
    login_manager.init_app(app)
    app.register_blueprint(bp)
    app.cli.add_command(staff_cli)
    # Twilio's webhooks prove themselves with a signature, not a CSRF token.
    for name, blueprint in app.blueprints.items():
        if name != bp.name:
            csrf.exempt(blueprint)

    @app.errorhandler(CSRFError)
    def _csrf_refused(error):
        return render_template("care/error.html", title="Form refused",
                               message="This form has expired or did not come from the "
                               "console. Go back, reload the page and try again."), 400


@bp.before_request
def _require_login():
    """Every console page needs a signed-in staff member seen within IDLE_TIMEOUT."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return redirect(url_for("care.login", next=request.path))
    now = services().clock.now().timestamp()
    seen = session.get("seen")
    if seen is None or now - seen > IDLE_TIMEOUT.total_seconds():
        logout_user()
        session.clear()
        flash("Your session ended after 15 minutes without activity. Please sign in again.")
        return redirect(url_for("care.login"))
    if request.endpoint not in NOT_ACTIVITY:
        session["seen"] = now
    session.permanent = True
    return None


@bp.after_request
def _no_store(response):
    """Patient data is never cached, framed, or leaked in a Referer (set-up links are secret)."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'")
    return response


@bp.context_processor
def _brand():
    """Clinic name and colour from settings, and the signed-in user, for every template."""
    settings = services().settings
    return {"clinic_name": settings.clinic_name, "care_color": settings.care_color,
            "staff": current_user}


def dev_secret_key(instance_path: str) -> str:
    """Development only: read or create instance/secret.key (mode 0600)."""
    path = Path(instance_path) / SECRET_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{SECRET_KEY_FILE}.{secrets.token_hex(4)}.tmp")
        temp.write_text(secrets.token_urlsafe(48))
        temp.chmod(0o600)
        try:
            os.link(temp, path)
        except FileExistsError:
            pass  # another process (web, worker, clock start together) won the race
        finally:
            temp.unlink()
    return path.read_text().strip()
