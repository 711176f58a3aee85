"""`python -m bench`: list the benchmarks; `python -m bench NAME [options]` runs one."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "send-rate": ("bench.send_rate",
                  "scheduled nudges through DB + RQ workers vs a bare sender (msg/s)"),
    "webhook": ("bench.webhook_turn",
                "one inbound text through the whole webhook vs a bare signed route"),
    "load": ("bench.load",
             "gunicorn at a steady 50 texts/s and at saturation vs a bare signed route"),
    "safety": ("bench.safety",
               "safety rules on the corpus, dev batch and frozen evaluation set; time per text"),
    "dispatch": ("bench.clock_scale",
                 "a clock pass and a DONE turn with 1M timers and 1M texts stored"),
    "optout": ("bench.optout",
               "opt-out recognition: recall, false opt-outs, confirmations (labelled lists)"),
}
"""Benchmark name -> (module with main(argv), what it measures)."""


def usage() -> str:
    """The list of benchmarks."""
    lines = ["usage: python -m bench NAME [--help | options]", "", "benchmarks:"]
    width = max(len(name) for name in BENCHMARKS)
    lines += [f"  {name.ljust(width)}  {about}" for name, (_, about) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to one benchmark's main(), or list them."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "list"):
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
