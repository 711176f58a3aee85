"""The console's pages: sign-in, Now, participants, a participant, inbox, admin pages."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import segno
from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from markupsafe import Markup
from sqlalchemy import select

from bot import alerts, runner
from bot.care import accounts, charts, export, handoff, queries, safety_plan
from bot.care.blueprint import admin_required, audit, bp, now, services
from bot.care.forms import (
    AckForm,
    EnrollForm,
    LoginForm,
    PauseForm,
    SafetyPlanForm,
    SetupForm,
    StaffForm,
    TextForm,
)
from bot.enrollment import EnrollError, invite
from bot.storage.models import (
    Alert,
    AlertNote,
    AuditRecord,
    CareReply,
    Message,
    Participant,
    StaffUser,
)
from flows.model import EndCourse, Pause, Result

PER_PAGE = 25
AUDIT_PER_PAGE = 100


# ---------------------------------------------------------------- signing in


def _address() -> str:
    """The client's address, for throttling (ProxyFix makes it right behind a proxy)."""
    return request.remote_addr or "unknown"


def _safe_next(target: str | None) -> str:
    """Only redirect back to a console path (never to another site)."""
    if target and target.startswith("/care/") and not urlsplit(target).netloc \
            and not target.startswith("//"):
        return target
    return url_for("care.now")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Password and authenticator code; throttled per account and per address."""
    form = LoginForm()
    if form.validate_on_submit():
        svc = services()
        with svc.db.session() as db:
            if accounts.throttled(db, form.email.data, _address(), now()):
                staff, throttled = None, True
            else:
                throttled = False
                staff = accounts.authenticate(db, form.email.data, form.password.data,
                                              form.code.data, _address(), now())
                if staff is not None:
                    db.add(AuditRecord(at=now(), actor=staff.email[:64], action="login",
                                       participant_id=None))
        if staff is not None:
            session.clear()  # no session fixation: a fresh session for the signed-in user
            login_user(staff)
            session["seen"] = now().timestamp()
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
        if throttled:
            flash("Too many failed sign-ins. Wait 15 minutes and try again.")
        else:
            flash("Email, password or code is not right.")
    return render_template("care/login.html", form=form, title="Sign in")


@bp.post("/logout")
def logout():
    """Sign out and forget the session."""
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("care.login"))


@bp.route("/setup/<token>", methods=["GET", "POST"])
def setup(token: str):
    """The one-time set-up link: choose a password and enrol the authenticator app."""
    svc = services()
    form = SetupForm()
    with svc.db.session() as db:
        user = accounts.setup_user(db, token, now())
        if user is None:
            return render_template("care/error.html", title="Link not valid",
                                   message="This set-up link has expired or was already "
                                   "used. Ask an admin for a new one."), 404
        if form.validate_on_submit():
            if form.password.data != form.confirm.data:
                flash("The two passwords differ.")
            else:
                try:
                    accounts.complete_setup(user, form.password.data, form.code.data, now())
                except accounts.AccountError as exc:
                    flash(str(exc))
                else:
                    db.add(AuditRecord(at=now(), actor=user.email[:64], action="staff.setup",
                                       participant_id=None))
                    flash("Your account is ready. Sign in with your password and a new code.")
                    return redirect(url_for("care.login"))
        uri = accounts.provisioning_uri(user, svc.settings.clinic_name)
        qr = Markup(segno.make(uri, error="m").svg_inline(scale=5, title="Authenticator QR"))
        return render_template("care/setup.html", form=form, qr=qr, secret=user.totp_secret,
                               email=user.email, title="Set up your account")


# ---------------------------------------------------------------- Now


def now_page():
    """What needs a person now, most urgent first."""
    svc = services()
    with svc.db.session() as db:
        page = queries.now_page(db, now(), svc.settings.care_silent_after)
        audit(db, "now.view")
    return render_template("care/now.html", page=page, ack=AckForm(), title="Now")


# Registered by hand: the endpoint is "care.now", while `now` here is the clock.
bp.add_url_rule("/", endpoint="now", view_func=now_page, methods=["GET"])


@bp.post("/alerts/<int:alert_id>/ack")
def ack_alert(alert_id: int):
    """Acknowledge an alert (it stops paging) with a note."""
    form = AckForm()
    if not form.validate_on_submit():
        abort(400)
    svc = services()
    with svc.db.session() as db:
        alert = db.get(Alert, alert_id)
        if alert is None:
            abort(404)
        participant_id = alert.participant_id
    if alerts.acknowledge(svc, alert_id, current_user.email[:64]):
        with svc.db.session() as db:
            db.add(AlertNote(alert_id=alert_id, staff_id=current_user.id,
                             note=(form.note.data or "").strip() or None, at=now()))
            audit(db, "alert.ack", participant_id)
        flash(f"Alert #{alert_id} acknowledged.")
    else:
        flash(f"Alert #{alert_id} was already acknowledged.")
    return redirect(request.form.get("back") == "participant"
                    and url_for("care.participant", participant_id=participant_id)
                    or url_for("care.now"))


# ---------------------------------------------------------------- participants


@bp.get("/participants")
def participants():
    """The searchable, sortable, paginated list."""
    svc = services()
    search = request.args.get("q", "")[:100]
    sort = request.args.get("sort", "activity")
    sort = sort if sort in queries.SORTS else "activity"
    descending = request.args.get("dir", "desc") != "asc"
    page = max(1, request.args.get("page", 1, type=int) or 1)
    with svc.db.session() as db:
        rows, total = queries.participant_rows(db, now(), search=search, sort=sort,
                                               descending=descending, page=page,
                                               per_page=PER_PAGE)
        audit(db, "participants.list")
    pages = max(1, -(-total // PER_PAGE))
    return render_template("care/participants.html", rows=rows, total=total, page=page,
                           pages=pages, q=search, sort=sort, descending=descending,
                           form=EnrollForm(), title="Participants")


@bp.post("/participants/enroll")
def enroll():
    """Invite a participant from the form (same rules as the CLI)."""
    form = EnrollForm()
    if not form.validate_on_submit():
        flash("Enter a mobile number.")
        return redirect(url_for("care.participants"))
    svc = services()
    try:
        pid = invite(svc, form.phone.data, timezone=(form.timezone.data or "").strip() or None,
                     name=(form.name.data or "").strip() or None)
    except EnrollError as exc:
        flash(f"Not invited: {exc}")
        return redirect(url_for("care.participants"))
    with svc.db.session() as db:
        audit(db, "participant.enroll", pid)
    flash(f"Invitation sent to participant #{pid}; they join by replying YES.")
    return redirect(url_for("care.participant", participant_id=pid))


def _participant(db, participant_id: int) -> Participant:
    """The participant or 404."""
    p = db.get(Participant, participant_id)
    if p is None:
        abort(404)
    return p


@bp.get("/participants/<int:participant_id>")
def participant(participant_id: int):
    """Profile, consent, sessions, timeline, charts, alerts, safety plan and actions."""
    return _participant_page(participant_id)


def _participant_page(participant_id: int, plan_form: SafetyPlanForm | None = None,
                      plan_error: str | None = None, status: int = 200):
    """Render the participant page (with a refused safety-plan form kept as typed)."""
    svc = services()
    settings = svc.settings
    with svc.db.session() as db:
        p = _participant(db, participant_id)
        share = queries.shares_journal(db, p.id, settings.journal_share_default)
        plan = safety_plan.load(db, p.id)
        if plan_form is None:
            plan_form = SafetyPlanForm(formdata=None, data=plan or {})
        context = {
            "p": p, "share": share,
            "sessions": queries.sessions_of(db, p.id, share),
            "timeline": queries.timeline(db, p, settings.default_timezone, share),
            "alerts": queries.participant_alerts(db, p.id, now()),
            "conversation": handoff.open_for(db, p.id),
            "mood_chart": charts.mood_chart(queries.moods(db, p.id, p.timezone),
                                            settings.care_color),
            "reply_chart": charts.reply_chart(queries.weekly_replies(db, p.id),
                                              settings.care_color),
            "safety_plan": plan,
            "safety_plan_sections": safety_plan.SECTIONS,
            "plan_form": plan_form, "plan_error": plan_error,
            "local": queries.local, "clinic_tz": settings.default_timezone,
        }
        audit(db, "participant.view", p.id)
    return render_template("care/participant.html", ack=AckForm(), pause=PauseForm(),
                           text=TextForm(), title=f"Participant #{participant_id}",
                           **context), status


@bp.post("/participants/<int:participant_id>/safety-plan")
def save_safety_plan(participant_id: int):
    """Store the edited safety plan (same checks as `safety-plan set`); errors keep the text."""
    form = SafetyPlanForm()
    if not form.validate_on_submit():
        if form.csrf_token.errors:
            abort(400)
        return _participant_page(participant_id, form,
                                 "Each section can be at most 1000 characters.", 400)
    _require_live(participant_id)
    sections = {key: getattr(form, key).data or "" for key, _ in safety_plan.SECTIONS}
    svc = services()
    try:
        with svc.db.session() as db:
            saved = safety_plan.save(db, participant_id, sections, current_user.email[:64],
                                     now())
            audit(db, "safety_plan.set", participant_id)
    except safety_plan.PlanError as exc:
        return _participant_page(participant_id, form, f"Not saved: {exc}.", 400)
    flash(f"Safety plan saved ({len(saved)} sections); the participant gets it by texting PLAN.")
    return redirect(url_for("care.participant", participant_id=participant_id) + "#safety-plan")


def _run_action(participant_id: int, events: tuple) -> None:
    """Carry out engine events for a participant through the normal turn (no text sent)."""

    def step(engine, ctx, state, _message):
        return Result(state=state, events=events)

    runner.run_turn(services(), step, participant_id=participant_id, via="queue")


@bp.post("/participants/<int:participant_id>/pause")
def pause(participant_id: int):
    """Hold nudges for some days."""
    form = PauseForm()
    if not form.validate_on_submit():
        flash("Pause for 1 to 30 days.")
        return redirect(url_for("care.participant", participant_id=participant_id))
    _require_live(participant_id)
    _run_action(participant_id, (Pause(now() + timedelta(days=form.days.data)),))
    _audited("participant.pause", participant_id)
    flash(f"Nudges paused for {form.days.data} days.")
    return redirect(url_for("care.participant", participant_id=participant_id))


@bp.post("/participants/<int:participant_id>/resume")
def resume(participant_id: int):
    """Nudges go out again now."""
    _require_live(participant_id)
    _run_action(participant_id, (Pause(None),))
    _audited("participant.resume", participant_id)
    flash("Nudges resumed.")
    return redirect(url_for("care.participant", participant_id=participant_id))


@bp.post("/participants/<int:participant_id>/course-end")
def course_end(participant_id: int):
    """The course is over: weekly maintenance check-ins begin."""
    _require_live(participant_id)
    _run_action(participant_id, (EndCourse(now()),))
    _audited("participant.course_end", participant_id)
    flash("Course ended: weekly check-ins scheduled.")
    return redirect(url_for("care.participant", participant_id=participant_id))


def _require_live(participant_id: int) -> None:
    """Actions need an existing participant who has not deleted their data."""
    with services().db.session() as db:
        if _participant(db, participant_id).status == "deleted":
            abort(409)


def _audited(action: str, participant_id: int | None) -> None:
    """Write one audit row in its own transaction."""
    with services().db.session() as db:
        audit(db, action, participant_id)


@bp.post("/participants/<int:participant_id>/text")
def send_text(participant_id: int):
    """A one-off text from the care team (from the participant page or the inbox)."""
    form = TextForm()
    back = (url_for("care.conversation", participant_id=participant_id)
            if request.form.get("back") == "inbox"
            else url_for("care.participant", participant_id=participant_id))
    if not form.validate_on_submit():
        flash("Write a message of at most 1600 characters.")
        return redirect(back)
    svc = services()
    try:
        with svc.db.session() as db:
            p = _participant(db, participant_id)
            sent = handoff.queue_staff_text(db, p, current_user.id, form.body.data, now())
            audit(db, "participant.text", p.id)
    except handoff.HandoffError as exc:
        flash(f"Not sent: {exc}")
        return redirect(back)
    handoff.send_queued(svc, [sent.message_id])
    note = f"Text sent ({sent.segments} segment{'s' if sent.segments != 1 else ''})."
    if sent.warnings:
        note += " Note: " + "; ".join(sent.warnings) + "."
    flash(note)
    return redirect(back)


# ---------------------------------------------------------------- inbox


@bp.get("/inbox")
def inbox():
    """Open conversations."""
    with services().db.session() as db:
        conversations = queries.open_conversations(db, now())
        audit(db, "inbox.view")
    return render_template("care/inbox.html", conversations=conversations, title="Inbox")


@bp.get("/inbox/<int:participant_id>")
def conversation(participant_id: int):
    """One conversation: the texts since it opened, a reply box, close."""
    svc = services()
    with svc.db.session() as db:
        p = _participant(db, participant_id)
        current = handoff.open_for(db, p.id)
        items = _conversation_items(db, p, current)
        audit(db, "conversation.view", p.id)
    return render_template("care/conversation.html", p=p, conversation=current, items=items,
                           text=TextForm(), title=f"Inbox: participant #{participant_id}",
                           last_id=max((i["id"] for i in items), default=0))


def _conversation_items(db, p: Participant, current, after: int = 0) -> list[dict]:
    """Texts in and out since the conversation opened (the last 20 before it for context)."""
    query = select(Message).where(Message.participant_id == p.id, Message.id > after)
    if current is None:
        query = query.order_by(Message.id.desc()).limit(20)
    else:
        query = query.where(Message.created_at >= current.opened_at).order_by(Message.id)
    rows = sorted(db.scalars(query).all(), key=lambda m: m.id)
    authors = dict(db.execute(select(CareReply.message_id, StaffUser.email)
                              .join(StaffUser, StaffUser.id == CareReply.staff_id)
                              .where(CareReply.message_id.in_([m.id for m in rows]))).all())
    clinic_tz = services().settings.default_timezone
    return [{"id": m.id, "direction": m.direction, "body": m.body,
             "who": ("participant" if m.direction == "in"
                     else authors.get(m.id) or f"bot ({m.key or 'reply'})"),
             "status": m.status, "at": queries.local(m.created_at, clinic_tz)}
            for m in rows if current is not None or m.direction == "in" or m.id in authors]


@bp.get("/inbox/<int:participant_id>/messages")
def inbox_poll(participant_id: int):
    """New texts since `after` as HTML rows (the conversation page polls this)."""
    after = request.args.get("after", 0, type=int) or 0
    svc = services()
    with svc.db.session() as db:
        p = _participant(db, participant_id)
        current = handoff.open_for(db, p.id)
        items = _conversation_items(db, p, current, after) if current else []
        if items:
            audit(db, "conversation.poll", p.id)
    return render_template("care/_messages.html", items=items)


@bp.post("/inbox/<int:participant_id>/open")
def open_conversation(participant_id: int):
    """Take over: the bot steps back on free text and nudges are held."""
    svc = services()
    try:
        with svc.db.session() as db:
            p = _participant(db, participant_id)
            handoff.open_conversation(db, p, current_user.id, now())
            audit(db, "conversation.open", p.id)
    except handoff.HandoffError as exc:
        flash(str(exc))
        return redirect(url_for("care.participant", participant_id=participant_id))
    return redirect(url_for("care.conversation", participant_id=participant_id))


@bp.post("/inbox/<int:participant_id>/close")
def close_conversation(participant_id: int):
    """Hand back to the bot and release held nudges."""
    svc = services()
    with svc.db.session() as db:
        p = _participant(db, participant_id)
        closed = handoff.close_conversation(db, p, current_user.id, now())
        audit(db, "conversation.close", p.id)
    flash("Conversation closed: the bot answers again." if closed
          else "There was no open conversation.")
    return redirect(url_for("care.inbox"))


# ---------------------------------------------------------------- admin


@bp.get("/export")
@admin_required
def export_page():
    """Choose the CSV export's options."""
    return render_template("care/export.html", title="Export")


@bp.get("/export.csv")
@admin_required
def export_csv():
    """Adherence and mood per participant and week, as CSV."""
    anonymous = request.args.get("anonymous") == "1"
    svc = services()
    with svc.db.session() as db:
        rows = export.weekly_rows(db)
        audit(db, "export.csv.anonymous" if anonymous else "export.csv")
    name = "adherence-anonymous.csv" if anonymous else "adherence.csv"
    return Response(export.to_csv(rows, anonymous=anonymous), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={name}"})


@bp.get("/audit")
@admin_required
def audit_log():
    """Who saw or did what, filterable by person, action and participant."""
    svc = services()
    who = request.args.get("actor", "")[:64].strip()
    action = request.args.get("action", "")[:64].strip()
    participant_id = request.args.get("participant", type=int)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    query = select(AuditRecord)
    if who:
        query = query.where(AuditRecord.actor.contains(who, autoescape=True))
    if action:
        query = query.where(AuditRecord.action.startswith(action, autoescape=True))
    if participant_id:
        query = query.where(AuditRecord.participant_id == participant_id)
    with svc.db.session() as db:
        rows = db.scalars(query.order_by(AuditRecord.id.desc())
                          .offset((page - 1) * AUDIT_PER_PAGE).limit(AUDIT_PER_PAGE + 1)).all()
        audit(db, "audit.view")
    clinic_tz = svc.settings.default_timezone
    records = [{"at": queries.local(r.at, clinic_tz), "actor": r.actor, "action": r.action,
                "participant": r.participant_id} for r in rows[:AUDIT_PER_PAGE]]
    return render_template("care/audit.html", records=records, actor=who, action=action,
                           participant=participant_id or "", page=page,
                           more=len(rows) > AUDIT_PER_PAGE, title="Audit log")


@bp.route("/staff", methods=["GET", "POST"])
@admin_required
def staff():
    """Care-team accounts: add one (shows its set-up link once), deactivate, re-issue links."""
    svc = services()
    form = StaffForm()
    link = None
    with svc.db.session() as db:
        if form.validate_on_submit():
            try:
                user, token = accounts.add_staff(db, form.email.data, form.role.data, now())
            except accounts.AccountError as exc:
                flash(str(exc))
            else:
                link = setup_link(token)
                audit(db, f"staff.add:{user.id}")
        users = db.scalars(select(StaffUser).order_by(StaffUser.email)).all()
        audit(db, "staff.view")
    return render_template("care/staff.html", form=form, users=users, link=link,
                           title="Staff")


@bp.post("/staff/<int:staff_id>/<any(deactivate, reset):what>")
@admin_required
def staff_action(staff_id: int, what: str):
    """Deactivate an account, or issue a fresh set-up link (password and TOTP reset)."""
    svc = services()
    link = None
    with svc.db.session() as db:
        user = db.get(StaffUser, staff_id)
        if user is None:
            abort(404)
        if user.id == current_user.id:
            flash("You cannot change your own account here.")
            return redirect(url_for("care.staff"))
        if what == "deactivate":
            user.active = False
            user.setup_token_hash = None
        else:
            user.active = True
            link = setup_link(accounts.reset_setup(user, now()))
        audit(db, f"staff.{what}:{user.id}")
        users = db.scalars(select(StaffUser).order_by(StaffUser.email)).all()
    flash(f"{user.email}: {'deactivated' if what == 'deactivate' else 'new set-up link'}.")
    return render_template("care/staff.html", form=StaffForm(), users=users, link=link,
                           title="Staff")


def setup_link(token: str) -> str:
    """The set-up URL for a token, on PUBLIC_BASE_URL when it is set."""
    base = services().settings.public_base_url
    path = url_for("care.setup", token=token)
    return f"{base}{path}" if base else url_for("care.setup", token=token, _external=True)
