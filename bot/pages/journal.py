"""The participant's journal page: /j/<token>, opened from the link JOURNAL texts.

Nothing shows without a valid token (bot.journal_links). Every response is kept out
of caches, referrers and search engines, and every opening is audited.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from bot import journal_book, journal_links
from bot.privacy import audit
from bot.storage.models import JournalEntry, Session

bp = Blueprint("journal", __name__, url_prefix="/j", template_folder="templates")

MAX_ADDITION = 1600
"""Longest addition from the page (the same as one inbound text)."""

PRIVATE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
"""Sent with every journal response, valid token or not."""


class AddForm(FlaskForm):
    """Add to an answer (target 'entry:<id>') or a note to a session ('session:<id>')."""

    class Meta:
        csrf_time_limit = 24 * 3600  # a page left open all day still saves; the link limits it

    target = HiddenField(validators=[DataRequired()])
    text = TextAreaField(validators=[DataRequired(), Length(max=MAX_ADDITION)])


@bp.after_request
def _private(response: Response) -> Response:
    """Keep the page out of caches, referrers, frames and search results."""
    response.headers.update(PRIVATE_HEADERS)
    return response


def _services():
    return current_app.extensions["integration_bot"]


def _gone() -> Response:
    """An invalid, expired or revoked link: nothing about anyone."""
    return Response(render_template("journal_gone.html"), status=404)


@bp.get("/<token>")
def page(token: str):
    """Every session, newest first, with a form to add to any answer."""
    svc = _services()
    now = svc.clock.now()
    with svc.db.session() as db:
        participant = journal_links.participant_for(db, svc.settings, token, now)
        if participant is None:
            return _gone()
        books = journal_book.sessions(db, participant, svc.definitions, svc.variables)
        audit(db, "participant", "journal.view", participant.id, now)
        timezone = participant.timezone
    return render_template("journal.html", sessions=books, token=token, form=AddForm(),
                           tz=timezone, local_date=journal_book.local_date,
                           local_datetime=journal_book.local_datetime,
                           program=svc.settings.program_name)


@bp.get("/<token>/journal.txt")
def download(token: str):
    """The whole journal as a text file."""
    svc = _services()
    now = svc.clock.now()
    with svc.db.session() as db:
        participant = journal_links.participant_for(db, svc.settings, token, now)
        if participant is None:
            return _gone()
        books = journal_book.sessions(db, participant, svc.definitions, svc.variables)
        audit(db, "participant", "journal.download", participant.id, now)
        text = journal_book.as_text(books, participant.timezone, "My journal")
        name = f"journal-{now.astimezone(ZoneInfo(participant.timezone)):%Y-%m-%d}.txt"
    return Response(text, mimetype="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@bp.post("/<token>/add")
def add(token: str):
    """Keep an addition to an answer, or a new note, encrypted like texted answers."""
    svc = _services()
    now = svc.clock.now()
    form = AddForm()
    with svc.db.session() as db:
        participant = journal_links.participant_for(db, svc.settings, token, now)
        if participant is None:
            return _gone()
        if not form.validate_on_submit():
            abort(400)
        kind, _, raw_id = form.target.data.partition(":")
        if not raw_id.isdigit() or kind not in ("entry", "session"):
            abort(400)
        if kind == "entry":
            entry = db.get(JournalEntry, int(raw_id))
            if entry is None or entry.participant_id != participant.id:
                abort(404)
            session_id, prompt = entry.session_id, entry.prompt
        else:
            session = db.get(Session, int(raw_id))
            if session is None or session.participant_id != participant.id:
                abort(404)
            session_id, prompt = session.id, "note"
        db.add(JournalEntry(participant_id=participant.id, session_id=session_id,
                            prompt=prompt, text=form.text.data.strip(), created_at=now))
        audit(db, "participant", "journal.add", participant.id, now)
    return redirect(url_for("journal.page", token=token, _anchor=f"session-{session_id}"),
                    code=303)
