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


def render(rules: RuleSet, *, version: str = "", model: dict | None = None) -> str:
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
              "written as 185/120 or in words, unless negated, about someone else or years ago."
              + (f" Reported as blood pressure (bp, cuff, blood pressure): from "
                 f"{bp['reported_systolic']}/{bp['reported_diastolic']}."
                 if "reported_systolic" in bp else ""), ""]
    lines += _net_section(rules)
    lines += _learned_section(model)
    lines += ["", "Reviewed by: ____________________  Date: ____________", ""]
    return "\n".join(lines)


def _net_section(rules: RuleSet) -> list[str]:
    """The check net: its concepts, weights, threshold and examples."""
    net = rules.net
    if net is None:
        return []
    lines = ["## The check net (check, possible_risk)", "", net.description, "",
             f"When no rule gives a level, each kind of risk content below adds its weight "
             f"(once per kind, unless a count is given); at {net.threshold} or more the bot "
             "asks the safety question. It never alerts by itself.", ""]
    for concept in net.concepts:
        extra = []
        if concept.count > 1:
            extra.append(f"up to {concept.count} different words count")
        if concept.only_with:
            extra.append("counts only beside " + ", ".join(sorted(concept.only_with)))
        lines.append(f"- {concept.name}: weight {concept.weight}"
                     + (f" ({'; '.join(extra)})" if extra else "")
                     + (f". {concept.description}" if concept.description else ""))
    lines += ["", f"Asks ({len(net.examples)}):"] + [f"- {t}" for t in net.examples]
    lines += ["", f"Does not ask ({len(net.counter_examples)}):"]
    lines += [f"- {t}" for t in net.counter_examples]
    return lines


def _learned_section(model: dict | None) -> list[str]:
    """The learned safety net: what it is, its threshold, its training data and figures."""
    if not model:
        return []
    lines = ["", "## The learned safety net (check, possible_risk)", "",
             "A small statistical text classifier (logistic regression over word pairs and "
             "letter sequences of the text, after the same clean-up the rules use), trained "
             "on labelled texts. When no rule gives a level it can only make the bot ask "
             "the safety question: it never alerts the care team by itself and never lowers "
             "a rule's verdict. It cannot explain itself the way a rule can, which is why, "
             "alone, it may only ask.", "",
             f"It asks when a text has at least {model.get('min_words', 1)} words and its "
             f"estimated chance that the text is a crisis or an urgent side "
             f"effect is at least {model['threshold']:.3f}. That threshold was chosen so "
             f"that, holding out one writer's texts at a time, it adds at most "
             f"{model['budget'] * 100:.1f} points of safety questions on ordinary texts "
             "(averaged over writers).", "",
             f"Trained on {model['n_rows']} labelled texts by these writers:", ""]
    for writer, files in model["trained_on"].items():
        lines.append(f"- {writer}: {', '.join(files)}")
    lines += ["", "Cross-validated (each writer scored by a model that never saw their texts; "
              "the rules themselves were written from all but the eval_v2 writer's texts):", "",
              "| held-out writer | crisis reached | urgent reached | questions on ordinary texts |",
              "|---|---|---|---|"]
    for writer, fig in model["cross_validation"].items():
        r, w = fig["rules"], fig["with"]
        lines.append(f"| {writer} | {r['crisis_reached']:.3f} -> {w['crisis_reached']:.3f} "
                     f"| {r['urgent_reached']:.3f} -> {w['urgent_reached']:.3f} "
                     f"| {r['ordinary_checks']:.3f} -> {w['ordinary_checks']:.3f} |")
    heads = model.get("heads") or {}
    if heads:
        lines += ["", "### Confirming a rules' question (learned_crisis, learned_urgent)", "",
                  "When the rules found risk words but no full rule (a check), two more "
                  "classifiers of the same kind, one for crisis and one for urgent side "
                  "effects, may confirm it: the text is then treated as a crisis or an "
                  "urgent side effect (the crisis or urgent reply, and the care team is told). "
                  "They never act on a text where no rule saw risk.", ""]
        budget = model.get("alert_budget", 0)
        for level, head in heads.items():
            lines.append(f"- {level}: confirms at an estimated chance of at least "
                         f"{head['threshold']:.3f}, chosen so that, holding out one writer at "
                         f"a time, it adds at most {budget * 100:.1f} points of alerts on "
                         "ordinary texts (averaged over writers).")
    raised, total = model.get("experience_raised_cv", (0, 0))
    lines += ["", f"Descriptions of the session's experience raised to a question in "
              f"cross-validation: {raised} of {total}.", "",
              f"Enabled: {'yes' if model.get('enabled') else 'no'} "
              "(setting SAFETY_LEARNED_STAGE).", ""]
    return lines
