"""Operator commands for the safety rules: their check inside `flows check`, and the review sheet."""

from __future__ import annotations

import click


def safety_rule_problems() -> tuple[list[str], str]:
    """(problems, summary): the rules file's shape and every rule's examples."""
    from flows.safety_rules import SafetyRulesError

    try:
        from flows import safety
    except SafetyRulesError as exc:  # the module refuses to load with broken rules
        return list(exc.problems), ""
    problems = safety.check_examples()
    rules = safety.RULESET.rules
    examples = sum(len(r.examples) + len(r.counter_examples) for r in rules)
    return problems, f"{len(rules)} safety rules ({examples} examples checked)"


@click.command("safety-sheet")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the sheet to this file instead of standard output.")
def safety_sheet(output: str | None) -> None:
    """Write the safety rules' review sheet (Markdown) for a clinician to sign off."""
    from flows import safety
    from flows.safety_sheet import render

    text = render(safety.RULESET)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output}: {len(safety.RULESET.rules)} rules")
    else:
        click.echo(text)
