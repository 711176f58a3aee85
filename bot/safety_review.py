"""Operator commands for the safety rules: their check inside `flows check`, and the review sheet."""

from __future__ import annotations

import click

from bot.config import Settings


def safety_rule_problems() -> tuple[list[str], str]:
    """(problems, summary): the rules file's shape and every rule's examples."""
    from flows.safety_model import SafetyModelError
    from flows.safety_rules import SafetyRulesError

    try:
        from flows import safety
    except SafetyRulesError as exc:  # the module refuses to load with broken rules
        return list(exc.problems), ""
    except SafetyModelError as exc:  # ... or with a weights file that does not load
        return [f"learned safety stage: {exc}"], ""
    problems = safety.check_examples() + safety.check_net_examples() + safety.check_model()
    rules, net = safety.RULESET.rules, safety.RULESET.net
    examples = sum(len(r.examples) + len(r.counter_examples) for r in rules)
    summary = f"{len(rules)} safety rules ({examples} examples checked)"
    if net is not None:
        summary += (f", check net of {len(net.concepts)} concepts "
                    f"({len(net.examples) + len(net.counter_examples)} examples checked)")
    summary += (f", learned stage of {len(safety.MODEL.weights)} weights "
                f"(threshold {safety.MODEL.threshold:.3f}, "
                f"{len(safety.MODEL.meta.get('reference', ()))} reference scores checked)")
    return problems, summary


@click.command("safety-sheet")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
              help="Write the sheet to this file instead of standard output.")
def safety_sheet(output: str | None) -> None:
    """Write the safety rules' review sheet (Markdown) for a clinician to sign off."""
    from flows import safety
    from flows.safety_sheet import render

    model = {**safety.MODEL.meta, "enabled": Settings.from_env().safety_learned_stage}
    text = render(safety.RULESET, model=model)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output}: {len(safety.RULESET.rules)} rules")
    else:
        click.echo(text)
