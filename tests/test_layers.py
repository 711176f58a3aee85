"""bot/ keeps the layering of ../shared/design/architecture.md: imports point down only.

Layers, top to bottom (a module may import its own layer and every layer below it;
`flows/` sits under all of them and imports the standard library only, see
test_purity.py):

- entry points: what a process, a request or a command starts in. Besides the
  table's `webhook`, `cli`, `dev`, `jobs` and `bot/__init__`, this holds `worker` and
  `supervise` (processes), `clock_cli`, `chat`, `report`, `safety_review` and
  `settings_doc` (bodies of CLI commands), `enrollment` (called by the CLI and the care
  console; it sends the welcome through the runner), `replay` and the webhook's
  `webhook_form`/`webhook_token`, all of `pages/` and all of `care/` except
  `care/handoff`.
- turn: one conversation step and what it calls. `runner`, `handlers`, `privacy`,
  `keys`, plus `care/handoff` (the runner asks it whether staff hold the
  conversation), `safety_words`, `safety_checks`, `safety_plan` (the safety path
  inside a turn), `replan`, `journal_book` (handlers call them) and `spool` (it replays
  texts spooled while the database was down into the runner).
- timers: `scheduling`, `delivery`, `alerts`, `reconcile` (settles sends whose worker
  died; part of the clock pass), `caring` (plans caring texts with
  scheduling.place_plan when an alert is acknowledged; no turn needed).
- ports: `storage/`, `participants` (records, including `cancel_pending`), `queue`
  (every `enqueue_*`, jobs named by dotted path), `sms`, `ratelimit`, `crypto`,
  `phones`, `config`, `services`, `logsafe`, `redis_conn`, `clock`, `dates`,
  `journal_links` (link records), `fake_twilio` (imports nothing of ours).

KNOWN_UPWARD lists the upward imports not yet removed; it may only shrink (the test
fails when an entry no longer happens, so a fixed one is struck off here). The cure
for the ones left is the design's: the job entry point (and the clock's) call the
timer, then the runner, instead of the timer calling the runner.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOT = ROOT / "bot"

ENTRY, TURN, TIMERS, PORTS = 3, 2, 1, 0

LAYERS = {
    # entry points
    "bot": ENTRY, "bot.webhook": ENTRY, "bot.cli": ENTRY, "bot.dev": ENTRY,
    "bot.jobs": ENTRY, "bot.worker": ENTRY, "bot.supervise": ENTRY,
    "bot.clock_cli": ENTRY, "bot.chat": ENTRY, "bot.report": ENTRY,
    "bot.safety_review": ENTRY, "bot.settings_doc": ENTRY, "bot.enrollment": ENTRY,
    "bot.replay": ENTRY, "bot.webhook_form": ENTRY, "bot.webhook_token": ENTRY,
    "bot.pages": ENTRY, "bot.pages.journal": ENTRY, "bot.pages.simulator": ENTRY,
    "bot.care": ENTRY, "bot.care.accounts": ENTRY, "bot.care.blueprint": ENTRY,
    "bot.care.charts": ENTRY, "bot.care.cli": ENTRY, "bot.care.export": ENTRY,
    "bot.care.forms": ENTRY, "bot.care.queries": ENTRY, "bot.care.safety_plan": ENTRY,
    "bot.care.views": ENTRY, "bot.care.web": ENTRY,
    # turn
    "bot.runner": TURN, "bot.handlers": TURN, "bot.privacy": TURN, "bot.keys": TURN,
    "bot.care.handoff": TURN, "bot.safety_words": TURN, "bot.safety_checks": TURN,
    "bot.safety_plan": TURN, "bot.replan": TURN, "bot.journal_book": TURN,
    "bot.spool": TURN,
    # timers
    "bot.scheduling": TIMERS, "bot.delivery": TIMERS, "bot.alerts": TIMERS,
    "bot.reconcile": TIMERS, "bot.caring": TIMERS,
    # ports
    "bot.storage": PORTS, "bot.storage.models": PORTS, "bot.participants": PORTS,
    "bot.queue": PORTS, "bot.sms": PORTS, "bot.ratelimit": PORTS, "bot.crypto": PORTS,
    "bot.phones": PORTS, "bot.config": PORTS, "bot.services": PORTS,
    "bot.logsafe": PORTS, "bot.redis_conn": PORTS, "bot.clock": PORTS,
    "bot.dates": PORTS, "bot.journal_links": PORTS, "bot.fake_twilio": PORTS,
}

KNOWN_UPWARD = {
    # a nudge that asks a question resumes the engine right after it is sent
    ("bot.delivery", "bot.runner"),
    # the clock pass pages unanswered safety questions and replays the spool (turns)
    ("bot.scheduling", "bot.safety_checks"),
    ("bot.scheduling", "bot.spool"),
}


def module_name(path: Path) -> str:
    """The dotted name of a file under bot/."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    """Every module of bot/ (Alembic's scripts are run by Alembic, not imported)."""
    return {module_name(path): path for path in sorted(BOT.rglob("*.py"))
            if "migrations" not in path.parts}


def bot_imports(node: ast.AST, known: dict[str, Path]) -> list[str]:
    """The bot modules one import statement names (a module, or a package's submodule)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == "bot"]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
            and node.module.split(".")[0] == "bot":
        names = []
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            names.append(full if full in known else node.module)
        return names
    return []


def walk(tree: ast.AST):
    """Each import statement with whether it sits inside a function."""
    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            yield from visit(child, nested)
    yield from visit(tree, False)


def imports_by_module():
    """{module: [(imported bot module, line, inside a function)]} for all of bot/."""
    known = modules()
    found = {}
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        found[name] = [(target, node.lineno, in_function)
                       for node, in_function in walk(tree)
                       for target in bot_imports(node, known)]
    return found


def test_every_module_of_bot_has_a_layer():
    missing = sorted(set(modules()) - set(LAYERS))
    gone = sorted(set(LAYERS) - set(modules()))
    assert missing == [], f"place these in LAYERS (and the README): {missing}"
    assert gone == [], f"these modules no longer exist: {gone}"


def test_no_bot_import_inside_a_function():
    inside = [f"{module}:{line} imports {target}"
              for module, found in imports_by_module().items()
              for target, line, in_function in found if in_function]
    assert inside == [], "move these imports to the top of their module:\n" + "\n".join(inside)


def test_imports_point_down_the_layers():
    upward, seen = [], set()
    for module, found in imports_by_module().items():
        for target, line, _ in found:
            if target not in LAYERS or LAYERS[target] <= LAYERS[module]:
                continue
            seen.add((module, target))
            if (module, target) not in KNOWN_UPWARD:
                upward.append(f"{module}:{line} imports {target}, a layer above it")
    assert upward == [], "\n".join(upward)
    fixed = sorted(KNOWN_UPWARD - seen)
    assert fixed == [], f"no longer imported upward, strike off KNOWN_UPWARD: {fixed}"
