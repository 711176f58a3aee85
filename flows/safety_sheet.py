"""The clinician's review sheet for the safety rules (pure, standard library only).

`flask --app bot flows safety-sheet` writes it: every category with its reply, then
every rule with its level, plain-language description, guards, examples (must match)
and counter-examples (must not), in plain Markdown for a clinician to read and sign off.
The regex patterns are left out on purpose: the examples say what a rule does.
"""

from __future__ import annotations

from flows.safety_rules import RuleSet

_GUARD_WORDS = {
    "idiom": "not in known hyperbole",
    "negated": "not when negated",
    "negated_substance": "not when negated or stopped",
    "someone_else": "not about someone else",
    "distant_past": "not years ago",
    "distant_past_sentence": "not years ago",
    "past_not_recent": "not a past event unless just now",
    "experience": "not describing the session's experience",
    "topic_talk": "not reading or asking about the topic",
    "quoted": "not quoting a song or film",
    "joking": "not joking",
    "resolved": "not when it already settled",
    "let_go": "not a wish the participant has let go of",
    "persists": "only when it has not worn off",
    "treatment": "only when the treatment is mentioned",
    "hedged": "a check when hedged",
    "question": "a check when asked as a question",
}


def render(rules: RuleSet, *, version: str = "") -> str:
    """The review sheet as Markdown text."""
    lines = ["# Safety rules: review sheet", ""]
    if version:
        lines += [f"Rules file version: {version}", ""]
    lines += [
        "Levels: **crisis** (crisis reply, care team alerted), **urgent** (care team the same",
        "day), **check** (the bot asks whether the participant is safe), **none** (a gentle",
        "reply for hard topics about others or the past). Every example below is checked",
        "against the rules whenever the bot starts.",
        "",
        "## Categories",
        "",
        "| category | level | reply | what it covers |",
        "|---|---|---|---|",
    ]
    for c in rules.categories.values():
        lines.append(f"| {c.name} | {c.level} | {c.reply_key or '(the safety question)'} "
                     f"| {c.description} |")
    lines += ["", f"## Rules ({len(rules.rules)})", ""]
    for n, rule in enumerate(rules.rules, 1):
        lines += [f"### {n}. {rule.id} ({rule.level}, {rule.category})", "", rule.description, ""]
        notes = [_GUARD_WORDS[g] for g in sorted(rule.skip_if | rule.requires | rule.check_if)]
        notes += [f"a gentle mention instead when {_GUARD_WORDS[g].removeprefix('not ')}"
                  for g in sorted(rule.mention_if)]
        if rule.other_category:
            notes.append(f"counts as {rule.other_category} when it happens to someone else")
        if notes:
            lines += ["Conditions: " + "; ".join(notes) + ".", ""]
        lines.append(f"Matches ({len(rule.examples)}):")
        lines += [f"- {text}" for text in rule.examples]
        if rule.counter_examples:
            lines += ["", f"Does not match ({len(rule.counter_examples)}):"]
            lines += [f"- {text}" for text in rule.counter_examples]
        lines += ["", f"Patterns: {len(rule.patterns)}.", ""]
    bp = rules.blood_pressure
    lines += ["### Blood pressure readings (urgent, blood_pressure)", "",
              f"A reading at or above {bp['systolic']}/{bp['diastolic']} (either number), "
              "written as 185/120 or in words, unless negated, about someone else or years ago.",
              "", "Reviewed by: ____________________  Date: ____________", ""]
    return "\n".join(lines)
