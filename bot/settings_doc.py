"""The README's configuration table, derived from the Settings declarations.

`python -m bot.settings_doc` prints the table; `--write` replaces the one in
README.md. tests/test_config.py fails when README.md holds anything else.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from bot.config import PROCESS_VARIABLES, PROJECT_ROOT, Settings

README = PROJECT_ROOT / "README.md"
HEADER = ("| Variable | Default | Meaning |", "|---|---|---|")


def shown_default(f) -> str:
    """A field's README default: its declared text, else its default in backquotes."""
    var = f.metadata["env"]
    if var.shown_default is not None:
        return var.shown_default
    default = f.default_factory() if callable(f.default_factory) else f.default
    return f"`{var.dump(default)}`" if default not in ("", ()) else ""


def rows() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for every setting, then the process variables."""
    declared = [(f"`{f.metadata['env'].name}`", shown_default(f), f.metadata["env"].meaning)
                for f in fields(Settings)]
    return declared + list(PROCESS_VARIABLES)


def table() -> str:
    """The configuration table as Markdown lines."""
    lines = list(HEADER)
    lines += [f"| {name} | {default} | {meaning} |".replace("|  |", "| |")
              for name, default, meaning in rows()]
    return "\n".join(lines)


def find_table(text: str) -> tuple[int, int]:
    """(start, end) character offsets of the configuration table in README text."""
    start = text.index(HEADER[0])
    end = text.find("\n\n", start)
    return start, len(text) if end < 0 else end


def readme_table(path: Path = README) -> str:
    """The configuration table as README.md holds it now."""
    text = path.read_text()
    start, end = find_table(text)
    return text[start:end]


def write(path: Path = README) -> bool:
    """Replace README's table with the generated one; True when it changed."""
    text = path.read_text()
    start, end = find_table(text)
    new = text[:start] + table() + text[end:]
    if new != text:
        path.write_text(new)
    return new != text


def main(argv: list[str] | None = None) -> int:
    """Print the table, or write it into README.md with --write."""
    parser = argparse.ArgumentParser(prog="python -m bot.settings_doc",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args(argv)
    if args.write:
        print("README.md updated" if write() else "README.md already up to date")
    else:
        print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
