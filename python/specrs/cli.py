"""The ``specrs`` command line.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
the module is imported only when its subcommand runs, so ``specrs bound`` never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "bound": ("specrs.cli_bound", "optimal acceptance α* of every draft scheme and verifier for n = 1..N"),
    "generate": ("specrs.cli_generate", "speculative generation with a target/draft model pair"),
    "study": ("specrs.cli_study", "studies on a real pair: acceptance (Hu et al. Table 1 shape), budget (RSD protocols)"),
    "stitch": ("specrs.cli_stitch", "T-Stitch sweep over small-model fractions for diffusion sampling"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specrs", description="Exact, measurable and fast speculative sampling.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == only:
            importlib.import_module(module).add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except ValueError as exc:  # SpecrsError and argument errors: a message, not a traceback
        print(f"specrs {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
