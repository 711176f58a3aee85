"""Wiring the console into the app: secret key, cookies, CSRF, Flask-Login, idle timeout.

Call init_app after every other blueprint is registered: the CSRF protection it installs
covers the console's forms and exempts the others (Twilio signs its webhooks, the journal
and simulator pages check their own tokens).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, flash, redirect, render_template, request, session, url_for
from flask_login import LoginManager, current_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.care import accounts
from bot.care import views as _views  # noqa: F401  (registers the routes on bp)
from bot.care.blueprint import bp, services
from bot.care.cli import staff_cli
from bot.journal_links import secret_key

IDLE_TIMEOUT = timedelta(minutes=15)
"""A console session with no page request for this long must sign in again."""

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
    # The same key as the journal links (SECRET_KEY; in development instance/secret.key).
    app.secret_key = app.secret_key or secret_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME="care_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production or app.config.get("SESSION_COOKIE_SECURE", False),
        PERMANENT_SESSION_LIFETIME=IDLE_TIMEOUT, SESSION_REFRESH_EACH_REQUEST=True,
        REMEMBER_COOKIE_DURATION=timedelta(0),
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
    """Patient data is never cached or framed; set-up links never leave in a Referer."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    # same-origin, not no-referrer: over HTTPS Flask-WTF's CSRF check wants our own Referer.
    response.headers["Referrer-Policy"] = "same-origin"
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
