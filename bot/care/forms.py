"""The console's forms (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from bot.care.accounts import MIN_PASSWORD, ROLES
from bot.safety_plan import SECTIONS


class LoginForm(FlaskForm):
    """Email, password and the authenticator's 6-digit code, in one step."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    code = StringField("Authenticator code", validators=[DataRequired(), Length(max=10)],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"})


class SetupForm(FlaskForm):
    """Choose a password and prove the authenticator was enrolled."""

    password = PasswordField(f"New password (at least {MIN_PASSWORD} characters)",
                             validators=[DataRequired(), Length(min=MIN_PASSWORD, max=1024)])
    confirm = PasswordField("Repeat the password", validators=[DataRequired()])
    code = StringField("Code shown by the authenticator app",
                       validators=[DataRequired(), Length(max=10)],
                       render_kw={"inputmode": "numeric", "autocomplete": "one-time-code"})


class AckForm(FlaskForm):
    """Acknowledge an alert with a note on what was done."""

    note = TextAreaField("What did you do?", validators=[Optional(), Length(max=2000)])


class EnrollForm(FlaskForm):
    """Invite a participant (same rules as `flask --app bot enroll`)."""

    phone = StringField("Mobile number", validators=[DataRequired(), Length(max=32)],
                        render_kw={"inputmode": "tel", "autocomplete": "off"})
    name = StringField("First name", validators=[Optional(), Length(max=60)])
    timezone = StringField("Time zone (e.g. America/Chicago; blank: guess from the number)",
                           validators=[Optional(), Length(max=64)])


class PauseForm(FlaskForm):
    """Hold nudges for some days."""

    days = IntegerField("Days", default=3, validators=[DataRequired(), NumberRange(1, 30)])


class TextForm(FlaskForm):
    """A text from a clinician to the participant."""

    body = TextAreaField("Message", validators=[DataRequired(), Length(max=1600)],
                         render_kw={"rows": 3})


class StaffForm(FlaskForm):
    """Add a care-team account (a set-up link is shown once)."""

    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    role = SelectField("Role", choices=list(ROLES))



class SafetyPlanForm(FlaskForm):
    """The participant's safety plan, one box per section (bot/safety_plan.py SECTIONS)."""


for _key, _heading in SECTIONS:
    setattr(SafetyPlanForm, _key, TextAreaField(
        _heading, validators=[Optional(), Length(max=1000)], render_kw={"rows": 2}))
